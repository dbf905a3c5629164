// SlotSockets, the primary's bookkeeping of reuseport's sockets, over real sockets
// bound on 127.0.0.1 (no worker): who stands in for a slot without a worker, when a
// stand-in is released, which sockets close on a scale-down and when a port is left.
import t, { type Test } from 'tap'
import { SlotSockets, type ClusterView, type ListenTarget, type SocketHandle, type SocketStep } from '../lib/balancer/reuseport.js'
import { reusePortSupport, tcpMigrateReq } from '../lib/common/reuseport.js'
import { freePort } from './helpers/http.js'

const supported = reusePortSupport(process.version, process.platform).supported

const view = (over: Partial<ClusterView> = {}): ClusterView => ({ wanted: 2, migrates: false, ready: [], stalled: [], generation: 0, settled: true, ...over })
const kinds = (steps: SocketStep[]): string[] => steps.map((s) => `${s.do} ${s.slot} → ${s.member}`)

/** A SlotSockets with a socket bound for each of slots 0, 1 and 2 on a free port of 127.0.0.1, closed at teardown. */
async function threeSlots (t: Test): Promise<{ sockets: SlotSockets, address: string, target: ListenTarget, handles: SocketHandle[] }> {
  const port = await freePort()
  const target = { port, host: '127.0.0.1' }
  const sockets = new SlotSockets()
  t.teardown(() => sockets.closeAll())
  const address = `127.0.0.1:${port}`
  const handles = await Promise.all([0, 1, 2].map((slot) => sockets.socketFor(slot, 0, address, target)))
  return { sockets, address, target, handles }
}

t.test('reusePortSupport and tcpMigrateReq read what they are given', async (t) => {
  t.same(reusePortSupport('v22.12.0', 'linux'), { supported: true })
  t.same(reusePortSupport('v23.1.0', 'linux'), { supported: true })
  t.same(reusePortSupport('v26.0.0', 'linux'), { supported: true })
  t.match(reusePortSupport('v22.11.0', 'linux'), { supported: false, reason: /Node v22.11.0 has no listen\(\{ reusePort \}\)/ })
  t.match(reusePortSupport('v23.0.0', 'linux'), { supported: false })
  t.match(reusePortSupport('v20.20.2', 'linux'), { supported: false })
  t.match(reusePortSupport('v24.0.0', 'darwin'), { supported: false, reason: /Linux only \(this is darwin\)/ })
  t.equal(tcpMigrateReq(() => '1\n'), true)
  t.equal(tcpMigrateReq(() => '0\n'), false)
  t.equal(tcpMigrateReq(() => { throw new Error('ENOENT') }), null, 'a kernel without the setting')
})

t.test('a slot whose worker left is stood in for by the ready worker standing in for the fewest, until its own worker listens', async (t) => {
  if (!supported) return t.pass(`Node ${process.version}: no SO_REUSEPORT`)
  const { sockets, address, target, handles: [a, b, c] } = await threeSlots(t)
  t.not(a, b, 'a socket per slot')
  t.not(b, c)
  t.equal(await sockets.socketFor(1, 0, address, target), b, 'the same socket for the slot\'s next worker')
  sockets.serving(0, 10)
  sockets.serving(1, 11)
  sockets.serving(2, 12)
  t.same(sockets.tend(view({ wanted: 3, ready: [10, 11, 12] })), [], 'every slot served')

  sockets.left(12)
  const first = sockets.tend(view({ wanted: 3, ready: [10, 11] }))
  t.same(kinds(first), ['adopt 2 → 10'], 'slot 2 is stood in for by the lowest ready member')
  t.equal(await (first[0] as Extract<SocketStep, { do: 'adopt' }>).socket, c, 'on slot 2\'s own socket')
  t.same(sockets.tend(view({ wanted: 3, ready: [10, 11] })), [], 'once')

  sockets.left(11)
  t.same(kinds(sockets.tend(view({ wanted: 3, ready: [10] }))), ['adopt 1 → 10'], 'the only ready one stands in for two slots')
  t.equal(sockets.serving(1, 21), 10, 'slot 1\'s new worker listens: its stand-in is released')
  sockets.left(10)
  t.same(kinds(sockets.tend(view({ wanted: 3, ready: [21] }))).sort(), ['adopt 0 → 21', 'adopt 2 → 21'], 'a stand-in that leaves: its slots are stood in for again')
})

t.test('a stalled worker (heartbeats overdue) is stood in for until it beats again; a stand-in that stalls is replaced', async (t) => {
  if (!supported) return t.pass(`Node ${process.version}: no SO_REUSEPORT`)
  const { sockets, handles: [, , c] } = await threeSlots(t)
  for (const slot of [0, 1, 2]) sockets.serving(slot, 10 + slot)
  const ready = [10, 11, 12]
  const first = sockets.tend(view({ wanted: 3, ready, stalled: [12] }))
  t.same(kinds(first), ['adopt 2 → 10'], 'the stalled worker\'s slot is stood in for, although its worker still holds the socket')
  t.equal(await (first[0] as Extract<SocketStep, { do: 'adopt' }>).socket, c, 'on that slot\'s socket')
  t.same(sockets.tend(view({ wanted: 3, ready, stalled: [12] })), [], 'once')
  t.same(kinds(sockets.tend(view({ wanted: 3, ready, stalled: [12, 10] }))), ['adopt 0 → 11', 'release 2 → 10', 'adopt 2 → 11'], 'a stand-in that stalls is released and replaced; its own slot is stood in for too')
  t.same(kinds(sockets.tend(view({ wanted: 3, ready, stalled: [10] }))), ['release 2 → 11'], 'the slot\'s worker beats again: its stand-in is released')
  t.same(kinds(sockets.tend(view({ wanted: 3, ready, stalled: [] }))), ['release 0 → 11'])
  t.same(sockets.tend(view({ wanted: 3, ready, stalled: [10, 11, 12] })), [], 'every worker stalled: nobody to stand in')
})

t.test('a scale-down closes the removed slot\'s sockets where the kernel moves their queues; elsewhere a remaining worker serves them', async (t) => {
  if (!supported) return t.pass(`Node ${process.version}: no SO_REUSEPORT`)
  const port = await freePort()
  const target = { port, host: '127.0.0.1' }
  const address = `127.0.0.1:${port}`
  for (const migrates of [true, false]) {
    const sockets = new SlotSockets()
    t.teardown(() => sockets.closeAll())
    await sockets.socketFor(0, 0, address, target)
    const removed = await sockets.socketFor(1, 0, address, target)
    sockets.serving(0, 10)
    sockets.serving(1, 11)
    sockets.left(11)
    const steps = sockets.tend(view({ wanted: 1, migrates, ready: [10] }))
    if (migrates) {
      t.same(steps, [], 'tcp_migrate_req=1: nothing to stand in for')
      await new Promise((resolve) => setImmediate(resolve))
      t.ok(removed.fd < 0, 'the removed slot\'s socket is closed')
    } else {
      t.same(kinds(steps), ['adopt 1 → 10'], 'tcp_migrate_req=0: the remaining worker serves the removed slot\'s socket')
      t.ok(removed.fd >= 0, 'which stays open')
      t.equal(sockets.serving(1, 31), 10, 'until the cluster scales up again: slot 1\'s new worker takes it, the stand-in is released')
    }
  }
})

t.test('a reload that moves the app to another port: the old port\'s sockets close once every slot runs the new generation', async (t) => {
  if (!supported) return t.pass(`Node ${process.version}: no SO_REUSEPORT`)
  const [oldPort, newPort] = [await freePort(), await freePort()]
  const sockets = new SlotSockets()
  t.teardown(() => sockets.closeAll())
  const old = await sockets.socketFor(0, 0, `:${oldPort}`, { port: oldPort })
  sockets.serving(0, 10)
  await sockets.socketFor(0, 1, `:${newPort}`, { port: newPort })
  sockets.serving(0, 20)
  t.same(sockets.tend(view({ wanted: 1, ready: [10, 20], generation: 1, settled: false })), [], 'while the reload runs, both stay')
  t.ok(old.fd >= 0)
  sockets.left(10)
  t.same(sockets.tend(view({ wanted: 1, ready: [20], generation: 1, settled: true })), [])
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(old.fd < 0, 'no worker of the new generation asked for the old port: its socket is closed')
})
