// Unit tests for lib/supervisor/crash-window.ts: crash times are the clock's readings.
import t from 'tap'
import { breakerCanTrip, crashesInWindow, inWindow, recordCrash, type CrashRate } from '../lib/supervisor/crash-window.js'
import type { BackoffPolicy } from '../lib/supervisor/backoff.js'

/** Records crashes at these times, one after the other: whether each exceeded the rate, and the times kept. */
function crashesAt (limit: CrashRate, times: number[]): { exceeded: boolean[], kept: number[] } {
  let kept: number[] = []
  const exceeded: boolean[] = []
  for (const now of times) {
    const result = recordCrash(kept, limit, now)
    kept = result.times
    exceeded.push(result.exceeded)
  }
  return { exceeded, kept }
}

const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 15_000, factor: 2, jitter: 0.1, resetAfterMs: 30_000 }

t.test('recordCrash: trips at crashes + 1 within the window', async (t) => {
  const { exceeded, kept } = crashesAt({ crashes: 3, windowMs: 10_000 }, [1_000, 2_000, 3_000, 4_000, 4_001])
  t.same(exceeded, [false, false, false, true, true], 'exactly `crashes` is tolerated; one more trips, and it stays over')
  t.same(kept, [1_000, 2_000, 3_000, 4_000, 4_001])
})

t.test('recordCrash: crashes that slid out of the window do not count', async (t) => {
  const limit = { crashes: 2, windowMs: 1_000 }
  t.same(crashesAt(limit, [0, 500, 1_200]), { exceeded: [false, false, false], kept: [500, 1_200] }, 'the crash at 0 slid out')
  t.same(crashesAt(limit, [0, 500, 1_200, 1_400]).exceeded.at(-1), true, '500, 1200, 1400: three in the window')
  t.same(crashesAt(limit, [0, 500, 1_200, 1_400, 10_000]), { exceeded: [false, false, false, true, false], kept: [10_000] }, 'all slid out')
})

t.test('recordCrash and inWindow: the boundary is exactly windowMs', async (t) => {
  const limit = { crashes: 2, windowMs: 1_000 }
  t.same(inWindow([0, 500], limit, 999), [0, 500], 'a crash 999 ms ago is inside')
  t.same(inWindow([0, 500], limit, 1_000), [500], 'a crash exactly windowMs ago is out')
  t.equal(crashesAt(limit, [0, 500, 999]).exceeded.at(-1), true, 'third crash 999 ms after the first trips')
  t.same(crashesAt(limit, [0, 500, 1_000]), { exceeded: [false, false, false], kept: [500, 1_000] }, 'a crash exactly windowMs ago is out: no trip')
})

t.test('recordCrash: several crashes at the same instant; inWindow of nothing', async (t) => {
  t.same(crashesAt({ crashes: 1, windowMs: 100 }, [42, 42]).exceeded, [false, true], 'two at the same time exceed crashes: 1')
  t.same(inWindow([], { crashes: 1, windowMs: 100 }, 42), [])
  t.same(inWindow([42, 42], { crashes: 1, windowMs: 100 }, 142), [])
})

t.test('recordCrash leaves the times it is given untouched', async (t) => {
  const times = [1, 2]
  recordCrash(times, { crashes: 5, windowMs: 10 }, 3)
  t.same(times, [1, 2])
})

t.test('breakerCanTrip: the defaults trip', async (t) => {
  // 90 + 180 + 360 + 720 + 1440 = 2790 ms for six crashes, well inside 60 s
  t.equal(breakerCanTrip({ crashes: 5, windowMs: 60_000 }, DEFAULT_BACKOFF), true)
})

t.test('breakerCanTrip: a large initialMs cannot trip', async (t) => {
  const slow = { ...DEFAULT_BACKOFF, initialMs: 20_000, maxMs: 60_000 }
  // 18000 + 36000 + 54000 > 60000 before the 6th crash
  t.equal(breakerCanTrip({ crashes: 5, windowMs: 60_000 }, slow), false)
  t.equal(breakerCanTrip({ crashes: 1, windowMs: 60_000 }, slow), true, 'one restart of 18 s fits')
})

t.test('breakerCanTrip: a window too short cannot trip', async (t) => {
  t.equal(breakerCanTrip({ crashes: 5, windowMs: 2_000 }, DEFAULT_BACKOFF), false, '2790 ms needed')
  t.equal(breakerCanTrip({ crashes: 5, windowMs: 2_791 }, DEFAULT_BACKOFF), true)
  t.equal(breakerCanTrip({ crashes: 1, windowMs: 50 }, DEFAULT_BACKOFF), false, 'the first delay (90 ms) alone is too long')
})

t.test('breakerCanTrip: uses the shortest jittered delay', async (t) => {
  const flat = { ...DEFAULT_BACKOFF, factor: 1, jitter: 0.5 } // 50 ms each at least
  t.equal(breakerCanTrip({ crashes: 4, windowMs: 201 }, flat), true, '200 ms < 201')
  t.equal(breakerCanTrip({ crashes: 4, windowMs: 200 }, flat), false, 'exactly windowMs cannot trip')
})

t.test('breakerCanTrip agrees with recordCrash at the boundary', async (t) => {
  // jitter 0, factor 1: crashes at 0, 100, 200, 300
  const flat: BackoffPolicy = { initialMs: 100, maxMs: 1_000, factor: 1, jitter: 0, resetAfterMs: 30_000 }
  for (const windowMs of [300, 301]) {
    const rate = { crashes: 3, windowMs }
    const tripped = crashesAt(rate, [0, 100, 200, 300]).exceeded.some(Boolean)
    t.equal(breakerCanTrip(rate, flat), tripped, `windowMs ${windowMs}`)
    t.equal(tripped, windowMs === 301)
  }
})

t.test('crashesInWindow: workers that are killed readyTimeoutMs after each start', async (t) => {
  const rate = { crashes: 5, windowMs: 60_000 }
  // one slot killed after 30 s: at 0 and ~30.09 s, then ~60.27 s (outside the window)
  t.equal(crashesInWindow(rate, DEFAULT_BACKOFF, 30_000), 2)
  t.equal(crashesInWindow(rate, DEFAULT_BACKOFF, 30_000, 2), 4, 'two workers: 4, one short of tripping')
  t.equal(crashesInWindow(rate, DEFAULT_BACKOFF, 30_000, 3), 6, 'three trip')
  // 10 s (the default): 6 kills by 50 s plus 2.79 s of delays
  t.equal(crashesInWindow(rate, DEFAULT_BACKOFF, 10_000), 6, 'the default readyTimeoutMs trips with a single worker')
  t.equal(crashesInWindow(rate, DEFAULT_BACKOFF), 6, 'at once: as breakerCanTrip counts')
  t.equal(crashesInWindow({ crashes: 5, windowMs: 1_000 }, DEFAULT_BACKOFF, 0, 64), 64, 'counts whole slots')
})
