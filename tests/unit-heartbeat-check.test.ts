// Unit tests for lib/supervisor/heartbeat-check.ts: findHung with the clock passed in.
import t from 'tap'
import { findHung } from '../lib/supervisor/heartbeat-check.js'

interface W { id: number, lastBeatAt: number }
const CHECK_EVERY = 1_000
const TIMEOUT = 5_000

t.test('fresh beats: nobody is hung', async (t) => {
  const workers: W[] = [{ id: 1, lastBeatAt: 99_000 }, { id: 2, lastBeatAt: 96_000 }]
  t.strictSame(findHung(workers, 100_000, 99_000, CHECK_EVERY, TIMEOUT), { hung: [], primaryStalled: false })
})

t.test('stale beats: those workers are hung, the same objects returned', async (t) => {
  const a: W = { id: 1, lastBeatAt: 99_500 }
  const b: W = { id: 2, lastBeatAt: 94_000 }
  const c: W = { id: 3, lastBeatAt: 10_000 }
  const r = findHung([a, b, c], 100_000, 99_000, CHECK_EVERY, TIMEOUT)
  t.equal(r.primaryStalled, false)
  t.equal(r.hung.length, 2)
  t.equal(r.hung[0], b)
  t.equal(r.hung[1], c)
})

t.test('the timeout boundary: exactly timeoutMs old is not yet hung', async (t) => {
  const w: W = { id: 1, lastBeatAt: 95_000 }
  t.strictSame(findHung([w], 100_000, 99_000, CHECK_EVERY, TIMEOUT).hung, [])
  t.strictSame(findHung([w], 100_001, 99_001, CHECK_EVERY, TIMEOUT).hung, [w])
})

t.test('a stalled primary blames no one', async (t) => {
  const stale: W = { id: 1, lastBeatAt: 0 }
  // planned every 1000 ms; threshold is 1000 + 5000/2 = 3500 ms since the last check
  t.strictSame(findHung([stale], 100_000, 90_000, CHECK_EVERY, TIMEOUT), { hung: [], primaryStalled: true })
  t.strictSame(findHung([stale], 100_000, 96_499, CHECK_EVERY, TIMEOUT), { hung: [], primaryStalled: true }, 'just over the threshold')
  t.strictSame(findHung([stale], 100_000, 96_500, CHECK_EVERY, TIMEOUT), { hung: [stale], primaryStalled: false }, 'exactly at the threshold is not a stall')
})

t.test('accepts any iterable, e.g. a Map of workers', async (t) => {
  const m = new Map<number, W>([[1, { id: 1, lastBeatAt: 0 }], [2, { id: 2, lastBeatAt: 99_999 }]])
  const r = findHung(m.values(), 100_000, 99_000, CHECK_EVERY, TIMEOUT)
  t.same(r.hung.map((w) => w.id), [1])
})

t.test('no workers', async (t) => {
  t.strictSame(findHung([], 100_000, 99_000, CHECK_EVERY, TIMEOUT), { hung: [], primaryStalled: false })
})
