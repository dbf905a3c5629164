// Unit tests for lib/supervisor/backoff.ts: pure, the random source injected.
import t from 'tap'
import { baseDelay, restartAfterCrash, restartDelay, type BackoffPolicy } from '../lib/supervisor/backoff.js'

const policy: BackoffPolicy = { initialMs: 100, maxMs: 15_000, factor: 2, jitter: 0.1, resetAfterMs: 30_000 }
const JUST_BELOW_ONE = 1 - Number.EPSILON

t.test('baseDelay: initialMs × factor^(attempt-1)', async (t) => {
  t.equal(baseDelay(policy, 1), 100)
  t.equal(baseDelay(policy, 2), 200)
  t.equal(baseDelay(policy, 3), 400)
  t.equal(baseDelay(policy, 8), 12_800)
})

t.test('baseDelay: capped at maxMs', async (t) => {
  t.equal(baseDelay(policy, 9), 15_000, '25600 capped')
  t.equal(baseDelay(policy, 50), 15_000)
  t.equal(baseDelay({ ...policy, initialMs: 20_000 }, 1), 15_000, 'even the first delay is capped')
  t.equal(baseDelay({ ...policy, maxMs: 0 }, 3), 0)
})

t.test('baseDelay: attempt 0 or below counts as the first', async (t) => {
  t.equal(baseDelay(policy, 0), 100)
  t.equal(baseDelay(policy, -3), 100)
})

t.test('baseDelay: factor 1 keeps the delay constant', async (t) => {
  const flat = { ...policy, factor: 1, initialMs: 250 }
  t.same([1, 2, 3, 10, 100].map((n) => baseDelay(flat, n)), [250, 250, 250, 250, 250])
})

t.test('restartDelay: jitter from the injected random source', async (t) => {
  t.equal(restartDelay(policy, 1, () => 0), 90, 'random 0 → base × (1 − jitter)')
  t.equal(restartDelay(policy, 1, () => 0.5), 100, 'random 0.5 → base')
  t.equal(restartDelay(policy, 1, () => JUST_BELOW_ONE), 110, 'random → 1 gives base × (1 + jitter)')
  t.equal(restartDelay(policy, 1, () => 0.25), 95)
  t.equal(restartDelay(policy, 3, () => 0), 360, 'jitter scales with the base (400)')
  t.equal(restartDelay(policy, 3, () => JUST_BELOW_ONE), 440)
})

t.test('restartDelay: calls random exactly once per delay', async (t) => {
  let calls = 0
  restartDelay(policy, 2, () => { calls++; return 0.5 })
  t.equal(calls, 1)
})

t.test('restartDelay: rounds to whole milliseconds', async (t) => {
  const odd = { ...policy, initialMs: 33, jitter: 0.1 }
  t.equal(restartDelay(odd, 1, () => 0), 30, '29.7 rounds to 30')
  t.equal(restartDelay(odd, 1, () => JUST_BELOW_ONE), 36, '36.3 rounds to 36')
})

t.test('restartDelay: jitter is applied to the capped base', async (t) => {
  t.equal(restartDelay(policy, 20, () => 0.5), 15_000, 'the cap itself at random 0.5')
  t.equal(restartDelay(policy, 20, () => 0), 13_500, 'cap × (1 − jitter)')
  t.equal(restartDelay(policy, 20, () => JUST_BELOW_ONE), 16_500, 'cap × (1 + jitter): documented "capped, ± jitter"')
})

t.test('restartDelay: no jitter, full jitter, factor 1', async (t) => {
  const none = { ...policy, jitter: 0 }
  t.equal(restartDelay(none, 1, () => 0), 100)
  t.equal(restartDelay(none, 1, () => JUST_BELOW_ONE), 100)
  const full = { ...policy, jitter: 1 }
  t.equal(restartDelay(full, 1, () => 0), 0, 'never negative')
  t.equal(restartDelay(full, 1, () => JUST_BELOW_ONE), 200)
  const flat = { ...policy, factor: 1 }
  t.equal(restartDelay(flat, 7, () => 0.5), 100)
  t.equal(restartDelay(flat, 7, () => 0), 90)
})

t.test('restartDelay: defaults to Math.random, within base ± jitter', async (t) => {
  for (let i = 0; i < 50; i++) {
    const d = restartDelay(policy, 2)
    t.ok(Number.isInteger(d), `${d} is an integer`)
    t.ok(d >= 180 && d <= 220, `${d} within 200 ± 10%`)
  }
})

t.test('restartAfterCrash: consecutive quick crashes count up and wait longer', async (t) => {
  const half = (): number => 0.5 // no jitter
  t.same(restartAfterCrash(policy, 0, 10, half), { attempt: 1, delayMs: 100 })
  t.same(restartAfterCrash(policy, 1, 10, half), { attempt: 2, delayMs: 200 })
  t.same(restartAfterCrash(policy, 4, 29_999, half), { attempt: 5, delayMs: 1600 }, 'just under resetAfterMs')
  t.same(restartAfterCrash(policy, 0, 0, half), { attempt: 1, delayMs: 100 }, 'never ready (0 ms served)')
})

t.test('restartAfterCrash: a worker that served resetAfterMs restarts at once and starts the count again', async (t) => {
  t.same(restartAfterCrash(policy, 4, 30_000), { attempt: 0, delayMs: 0 }, 'exactly resetAfterMs resets')
  t.same(restartAfterCrash(policy, 9, 3_600_000), { attempt: 0, delayMs: 0 })
  t.same(restartAfterCrash({ ...policy, resetAfterMs: 0 }, 7, 0), { attempt: 0, delayMs: 0 }, 'resetAfterMs 0: always at once')
})
