// Cluster-wide crash counting in a sliding window (OTP's restart intensity,
// systemd's StartLimitBurst/StartLimitIntervalSec). Pure apart from its clock.
import { baseDelay, type BackoffPolicy } from './backoff.js'

export interface CrashRate {
  crashes: number
  windowMs: number
}

/** The crash times still inside the window at `now`. */
export function inWindow (times: readonly number[], limit: CrashRate, now: number): number[] {
  return times.filter((t) => t > now - limit.windowMs)
}

/** Records a crash at `now`: the times kept, and whether the rate is now exceeded (one more than `crashes` in the window). */
export function recordCrash (times: readonly number[], limit: CrashRate, now: number): { times: number[], exceeded: boolean } {
  const kept = [...inWindow(times, limit, now), now]
  return { times: kept, exceeded: kept.length > limit.crashes }
}

/**
 * The most crashes a crash loop fits in the window: `workers` slots that start
 * together, each crashing `upMs` after every start (0: at once; readyTimeoutMs: a worker
 * that never becomes ready and is killed for it), restarted after the shortest delays
 * their backoff allows. Counted up to `crashes + 1`, which is all the breaker needs.
 */
export function crashesInWindow (rate: CrashRate, backoff: BackoffPolicy, upMs = 0, workers = 1): number {
  let perSlot = 1
  // crash 1 at t=0, crash k after k-1 restart delays and k-1 more lives of upMs
  let elapsed = 0
  for (let attempt = 1; perSlot * workers <= rate.crashes; attempt++) {
    elapsed += baseDelay(backoff, attempt) * (1 - backoff.jitter) + upMs
    if (elapsed >= rate.windowMs) break
    perSlot++
  }
  return perSlot * workers
}

/**
 * Whether a single slot crashing at once after every start (the fastest crash loop
 * there is) can ever exceed the rate: if even that cannot fit `crashes + 1` crashes
 * in the window, the breaker never trips and the cluster restarts forever.
 */
export function breakerCanTrip (rate: CrashRate, backoff: BackoffPolicy): boolean {
  return crashesInWindow(rate, backoff) > rate.crashes
}
