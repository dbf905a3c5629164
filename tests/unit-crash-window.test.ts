// Unit tests for lib/supervisor/crash-window.ts, with an injected clock.
import t from 'tap'
import { CrashWindow, breakerCanTrip, crashesInWindow } from '../lib/supervisor/crash-window.js'
import type { BackoffPolicy } from '../lib/supervisor/backoff.js'

function clock (start = 0): { now: () => number, set: (t: number) => void } {
  let now = start
  return { now: () => now, set: (t) => { now = t } }
}

const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 15_000, factor: 2, jitter: 0.1, resetAfterMs: 30_000 }

t.test('CrashWindow: trips at crashes + 1 within the window', async (t) => {
  const c = clock(1_000)
  const w = new CrashWindow({ crashes: 3, windowMs: 10_000 }, c.now)
  t.equal(w.record(), false, '1st')
  c.set(2_000)
  t.equal(w.record(), false, '2nd')
  c.set(3_000)
  t.equal(w.record(), false, '3rd: exactly `crashes` is tolerated')
  t.equal(w.count(), 3)
  c.set(4_000)
  t.equal(w.record(), true, '4th within the window trips')
  t.equal(w.count(), 4)
  c.set(4_001)
  t.equal(w.record(), true, 'still over the rate')
})

t.test('CrashWindow: crashes that slid out of the window do not count', async (t) => {
  const c = clock(0)
  const w = new CrashWindow({ crashes: 2, windowMs: 1_000 }, c.now)
  t.equal(w.record(), false) // t=0
  c.set(500)
  t.equal(w.record(), false) // t=500
  c.set(1_200)
  t.equal(w.count(), 1, 'the crash at 0 slid out')
  t.equal(w.record(), false, 'only 500 and 1200 in the window')
  c.set(1_400)
  t.equal(w.record(), true, '500, 1200, 1400: three in the window')
  c.set(10_000)
  t.equal(w.count(), 0, 'all slid out')
  t.equal(w.record(), false)
})

t.test('CrashWindow: the boundary is exactly windowMs', async (t) => {
  const c = clock(0)
  const w = new CrashWindow({ crashes: 2, windowMs: 1_000 }, c.now)
  w.record() // 0
  c.set(500)
  w.record() // 500
  c.set(999)
  t.equal(w.count(), 2, 'a crash 999 ms ago is inside')

  const c2 = clock(0)
  const w2 = new CrashWindow({ crashes: 2, windowMs: 1_000 }, c2.now)
  w2.record() // 0
  c2.set(500)
  w2.record() // 500
  c2.set(999)
  t.equal(w2.record(), true, 'third crash 999 ms after the first trips')

  const c3 = clock(0)
  const w3 = new CrashWindow({ crashes: 2, windowMs: 1_000 }, c3.now)
  w3.record() // 0
  c3.set(500)
  w3.record() // 500
  c3.set(1_000)
  t.equal(w3.record(), false, 'a crash exactly windowMs ago is out: no trip')
  t.equal(w3.count(), 2)
})

t.test('CrashWindow: count() on an empty window, and several crashes at the same instant', async (t) => {
  const c = clock(42)
  const w = new CrashWindow({ crashes: 1, windowMs: 100 }, c.now)
  t.equal(w.count(), 0)
  t.equal(w.record(), false)
  t.equal(w.record(), true, 'two at the same time exceed crashes: 1')
  t.equal(w.count(), 2)
  c.set(142)
  t.equal(w.count(), 0)
})

t.test('CrashWindow: exposes its limit', async (t) => {
  const w = new CrashWindow({ crashes: 5, windowMs: 60_000 }, () => 0)
  t.same(w.limit, { crashes: 5, windowMs: 60_000 })
})

t.test('CrashWindow: defaults to the real clock', async (t) => {
  const w = new CrashWindow({ crashes: 1, windowMs: 3_600_000 })
  t.equal(w.now, Date.now)
  t.equal(w.record(), false)
  t.equal(w.record(), true)
  t.equal(w.count(), 2)
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

t.test('breakerCanTrip agrees with CrashWindow at the boundary', async (t) => {
  // jitter 0, factor 1: crashes at 0, 100, 200, 300
  const flat: BackoffPolicy = { initialMs: 100, maxMs: 1_000, factor: 1, jitter: 0, resetAfterMs: 30_000 }
  for (const windowMs of [300, 301]) {
    const rate = { crashes: 3, windowMs }
    const c = clock(0)
    const w = new CrashWindow(rate, c.now)
    let tripped = w.record()
    for (let k = 1; k <= rate.crashes; k++) {
      c.set(k * 100)
      tripped = w.record() || tripped
    }
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
