// The dashboard's history in the primary: the rings of samples and the events' timeline,
// with readings and times given by the test.
import t from 'tap'
import fc from 'fast-check'
import { Rings, FIGURES, type Reading } from '../lib/dashboard/rings.js'
import { Timeline, MARKED } from '../lib/dashboard/timeline.js'
import { renderTop, sparkline, eventText } from '../lib/control/top-view.js'
import type { ClusterStatus } from '../lib/supervisor/status.js'

const MiB = 1024 * 1024
const reading = (workerId: number, pid: number, fields: Partial<Reading> = {}): Reading => ({
  workerId, pid, generation: 0, cpuSeconds: 0, rssBytes: 50 * MiB, heapUsedBytes: 5 * MiB, eventLoopDelayMs: 1, requests: 0, inflight: 0, connections: 0, ...fields,
})
const figure = (name: typeof FIGURES[number]): number => FIGURES.indexOf(name)

t.test('rates come from two samples of the same process; a replacement starts its own series', async (t) => {
  const rings = new Rings(10)
  rings.record(1000, { ready: 1, desired: 1 }, [reading(0, 100, { requests: 0, cpuSeconds: 1 })])
  const second = rings.record(2000, { ready: 1, desired: 1 }, [reading(0, 100, { requests: 250, cpuSeconds: 1.5 })])
  t.equal(second.slots[0].values[figure('requestsPerSecond')], 250)
  t.equal(second.slots[0].values[figure('cpuPercent')], 50, 'half a core')
  t.equal(second.slots[0].values[figure('rssMb')], 50)
  // the worker crashed: a second with no ready worker in the slot, then its replacement
  rings.record(3000, { ready: 0, desired: 1 }, [])
  const replaced = rings.record(4000, { ready: 1, desired: 1 }, [reading(0, 101, { requests: 10, cpuSeconds: 0.2 })])
  t.equal(replaced.slots[0].values[figure('requestsPerSecond')], null, 'no rate from another process\'s counts')
  const s = rings.series()
  t.same(s.times, [1000, 2000, 3000, 4000])
  t.same(s.slots[0].pid, [100, 100, null, 101], 'a gap where the slot had no ready worker')
  t.same(s.ready, [1, 1, 0, 1])
  t.same(s.slots[0].values[figure('requestsPerSecond')], [null, 250, null, null])
})

t.test('the rings keep the last `capacity` seconds, and forget a slot with nothing left in them', async (t) => {
  const rings = new Rings(3)
  for (let i = 0; i < 5; i++) rings.record(i * 1000, { ready: 2, desired: 2 }, [reading(0, 1, { requests: i * 10 }), ...(i < 1 ? [reading(1, 2)] : [])])
  const s = rings.series()
  t.same(s.times, [2000, 3000, 4000])
  t.same(s.slots.map((slot) => slot.workerId), [0], 'slot 1 was last seen 4 seconds ago')
  t.same(s.slots[0].values[figure('requestsPerSecond')], [10, 10, 10])
})

t.test('property: the series always has one column per second kept, aligned, with values only where a sample was', async (t) => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 20 }),
    fc.array(fc.array(fc.record({ workerId: fc.integer({ min: 0, max: 5 }), pid: fc.integer({ min: 1, max: 4 }), requests: fc.nat(1000) }), { maxLength: 6 }), { maxLength: 60 }),
    (capacity, seconds) => {
      const rings = new Rings(capacity)
      const sampled: Array<Map<number, number>> = []
      seconds.forEach((readings, i) => {
        const once = [...new Map(readings.map((r) => [r.workerId, r])).values()]
        sampled.push(new Map(once.map((r) => [r.workerId, r.pid])))
        rings.record(i * 1000, { ready: once.length, desired: 6 }, once.map((r) => reading(r.workerId, r.pid, { requests: r.requests })))
      })
      const s = rings.series()
      const kept = sampled.slice(-capacity)
      if (s.times.length !== kept.length) throw new Error(`${s.times.length} columns for ${kept.length} seconds`)
      for (const slot of s.slots) {
        if (slot.pid.length !== kept.length || slot.values.some((v) => v.length !== kept.length)) throw new Error('a column of another length')
        slot.pid.forEach((pid, i) => {
          if (pid !== (kept[i].get(slot.workerId) ?? null)) throw new Error(`slot ${slot.workerId} second ${i}: pid ${pid}`)
        })
      }
      for (const [i, second] of kept.entries()) {
        for (const workerId of second.keys()) {
          if (!s.slots.some((slot) => slot.workerId === workerId && slot.pid[i] !== null)) throw new Error(`a sample of slot ${workerId} is missing`)
        }
      }
    }), { numRuns: 500 })
  t.pass('500 random sequences')
})

t.test('16 workers and 15 minutes of seconds fit in well under a megabyte of typed arrays', async (t) => {
  const rings = new Rings(900)
  const readings = Array.from({ length: 16 }, (_, i) => reading(i, 1000 + i))
  const before = process.memoryUsage().arrayBuffers
  for (let s = 0; s < 900; s++) rings.record(s * 1000, { ready: 16, desired: 16 }, readings)
  const grown = process.memoryUsage().arrayBuffers - before
  t.ok(grown < 1024 * 1024, `${Math.round(grown / 1024)} KiB`)
})

t.test('the timeline keeps the events a person looks for, with short fields and no stderr, for the window only', async (t) => {
  const timeline = new Timeline(60_000, 3)
  t.equal(timeline.add(0, { event: 'worker.listening', workerId: 0 }), undefined, 'not on the timeline')
  const exit = timeline.add(1000, { event: 'worker.exit', workerId: 1, pid: 7, reason: 'crashed', code: 1, expected: false, stderr: ['secret'], signal: null })
  t.same(exit, { time: 1000, event: 'worker.exit', fields: { workerId: 1, pid: 7, reason: 'crashed', code: 1, expected: false, signal: null } })
  timeline.add(2000, { event: 'reload.start', generation: 1, workers: 2 })
  timeline.add(3000, { event: 'reload.complete', generation: 1, durationMs: 900 })
  timeline.add(4000, { event: 'scale', from: 2, to: 3 })
  t.same(timeline.since(4000).map((m) => m.event), ['reload.start', 'reload.complete', 'scale'], 'at most 3')
  t.same(timeline.since(63_500).map((m) => m.event), ['scale'], 'at most a minute old')
  t.ok(MARKED.has('upgrade.complete') && MARKED.has('crash-rate.exceeded'))
})

t.test('top: a sparkline scales to its own maximum, a gap is a space; the frame fits the terminal', async (t) => {
  t.equal(sparkline([0, 5, 10, null, 10], 5), '▁▅█ █')
  t.equal(sparkline([0, 0], 4), '  ▁▁', 'padded to its width; all zero: the lowest bar')
  t.equal(sparkline([1, 2, 3, 4, 5, 6], 3), '▆▇█', 'the latest values')
  const status = {
    name: 'shop',
    pid: 1,
    state: 'running',
    schedulingPolicy: 'rr',
    generation: 0,
    uptimeMs: 5000,
    workers: { ready: 1, desired: 1 },
    crashes: { inWindow: 0, windowMs: 60_000 },
    members: [{ workerId: 0, pid: 10, state: 'ready', generation: 0, uptimeMs: 5000, rssBytes: 50e6, eventLoopDelayMs: 1 }],
  } as unknown as ClusterStatus
  const rings = new Rings(60)
  for (let s = 0; s < 30; s++) rings.record(s * 1000, { ready: 1, desired: 1 }, [reading(0, 10, { requests: s * s })])
  const frame = { status, series: rings.series(), events: ['e1', 'e2', 'e3'], logs: Array.from({ length: 40 }, (_, i) => `line ${i} ${'x'.repeat(200)}`) }
  for (const [columns, rows] of [[120, 30], [60, 12], [20, 5]]) {
    const lines = renderTop({ ...frame, columns, rows }).split('\n')
    t.ok(lines.length <= rows, `${columns}×${rows}: ${lines.length} lines`)
    t.ok(lines.every((l) => [...l].length <= columns), `${columns}×${rows}: no line wider than the terminal`)
    t.equal(lines.at(-1), 'q or Ctrl-C to quit'.slice(0, columns - 1) + ([...'q or Ctrl-C to quit'].length > columns ? '…' : 'q or Ctrl-C to quit'.slice(columns - 1)))
  }
  const wide = renderTop({ ...frame, columns: 120, rows: 30 })
  t.match(wide, /^0 +10 +ready .* 57 +0% +[▁▂▃▄▅▆▇█ ]+$/m, 'worker 0: its requests per second now, then its line')
  t.match(wide, /line 39 x+…$/m, 'the latest log line, cut')
  t.equal(eventText(0, '{"event":"worker.exit","workerId":1,"pid":7,"reason":"crashed","stderr":["x"]}').slice(9), 'worker.exit workerId=1 pid=7 reason=crashed')
  t.equal(eventText(0, 'a pretty line').slice(9), 'a pretty line')
})
