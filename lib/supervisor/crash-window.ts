// Cluster-wide crash counting in a sliding window (OTP's restart intensity,
// systemd's StartLimitBurst/StartLimitIntervalSec). Pure apart from its clock.
import { baseDelay, type BackoffPolicy } from './backoff.js'

export interface CrashRate {
  crashes: number
  windowMs: number
}

export class CrashWindow {
  readonly #times: number[] = []
  constructor (readonly limit: CrashRate, readonly now: () => number = Date.now) {}

  /** Records a crash; true when the rate is now exceeded (one more than `crashes` in the window). */
  record (): boolean {
    const t = this.now()
    this.#times.push(t)
    this.#prune(t)
    return this.#times.length > this.limit.crashes
  }

  /** Crashes currently inside the window. */
  count (): number {
    this.#prune(this.now())
    return this.#times.length
  }

  #prune (t: number): void {
    while (this.#times.length && this.#times[0] <= t - this.limit.windowMs) this.#times.shift()
  }
}

/**
 * Whether a single slot crashing at once after every start (the fastest crash loop
 * there is) can ever exceed the rate: if even that cannot fit `crashes + 1` crashes
 * in the window, the breaker never trips and the cluster restarts forever.
 */
export function breakerCanTrip (rate: CrashRate, backoff: BackoffPolicy): boolean {
  let elapsed = 0
  // crash 1 at t=0, crash k after the delays of restarts 1..k-1
  for (let attempt = 1; attempt <= rate.crashes; attempt++) {
    elapsed += baseDelay(backoff, attempt) * (1 - backoff.jitter)
    if (elapsed >= rate.windowMs) return false
  }
  return true
}
