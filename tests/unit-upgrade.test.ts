// The pure parts of an upgrade and of systemd's protocols: which inherited socket
// serves a listen, what systemd is told for an event, the oldest Node a new primary may run.
import t from 'tap'
import fs from 'node:fs'
import { servesListen } from '../lib/upgrade/sockets.js'
import { hostPort } from '../lib/common/address.js'
import { notificationFor, notifyArgs } from '../lib/upgrade/notify.js'
import { MIN_NODE } from '../lib/upgrade/handover.js'

t.test('an inherited socket serves a listen on its port and host; no host takes a wildcard socket', async (t) => {
  const v4 = { address: '127.0.0.1', port: 3000 }
  const any6 = { address: '::', port: 3000 }
  const any4 = { address: '0.0.0.0', port: 3000 }
  t.ok(servesListen(v4, '127.0.0.1', 3000))
  t.notOk(servesListen(v4, '127.0.0.1', 3001), 'another port')
  t.notOk(servesListen(v4, '10.0.0.1', 3000), 'another host')
  t.ok(servesListen(v4, null, 3000), 'no host takes the socket of its port, wherever it listens (ListenStream=127.0.0.1:3000)')
  t.ok(servesListen(v4, undefined, 3000))
  for (const host of [null, undefined, '']) {
    t.ok(servesListen(any6, host, 3000), `${host} → [::]`)
    t.ok(servesListen(any4, host, 3000), `${host} → 0.0.0.0`)
  }
  t.ok(servesListen(any6, '0.0.0.0', 3000), 'a wildcard for a wildcard')
  t.ok(servesListen(any4, '::', 3000))
  t.notOk(servesListen(any6, '127.0.0.1', 3000), 'a host does not take a wildcard socket')
  t.notOk(servesListen({ address: '::', port: 0 }, null, 0), 'port 0 is a new port each time, never inherited')
  t.equal(hostPort(v4.address, v4.port), '127.0.0.1:3000')
  t.equal(hostPort(any6.address, any6.port), '[::]:3000')
})

t.test('what systemd is told for each event', async (t) => {
  const clock = (): bigint => 123456789n
  const line = '3/4 workers ready'
  const status = (): string => line
  t.same(notificationFor({ event: 'reload.start', generation: 1, workers: 4 }, status, clock), { RELOADING: '1', MONOTONIC_USEC: '123456789', STATUS: 'reloading: 3/4 workers ready' })
  t.same(notificationFor({ event: 'reload.complete', generation: 1, durationMs: 5 }, status, clock), { READY: '1', STATUS: line })
  t.same(notificationFor({ event: 'reload.aborted', reason: 'x' }, status, clock), { READY: '1', STATUS: line }, 'an aborted reload is over too: the old workers serve')
  t.same(notificationFor({ event: 'shutdown.start', signal: 'SIGTERM', workers: 4 }, status, clock), { STOPPING: '1', STATUS: 'stopping: 3/4 workers ready' })
  t.same(notificationFor({ event: 'shutdown.start', signal: 'upgrade', workers: 4 }, status, clock), { STATUS: 'handing over to a new primary: 3/4 workers ready' }, 'no STOPPING=1 for an upgrade')
  t.same(notificationFor({ event: 'scale', from: 4, to: 5 }, status, clock), { STATUS: line })
  t.equal(notificationFor({ event: 'worker.fork', workerId: 0, pid: 1, generation: 0 }, status, clock), undefined)
  t.same(notifyArgs({ READY: '1', STATUS: 'a\nb' }), ['READY=1', 'STATUS=a b'], 'one line per variable')
})

t.test('MIN_NODE is package.json\'s engines', async (t) => {
  const { engines } = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  t.equal(engines.node, `>=${MIN_NODE.join('.')}`)
})
