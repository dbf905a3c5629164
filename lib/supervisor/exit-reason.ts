// Why a worker exited, from what the supervisor asked of it and what the OS reported.
// Pure, so every branch is unit-tested.

/** What the supervisor asked of a worker before it exited, if anything. */
export type Leaving =
  | 'drained' // shutdown, reload, scale-down: drained on request
  | 'recycled' // replaced for its memory or request count, drained on request
  | 'hung' // killed: no heartbeat in time
  | 'not-ready' // killed: not ready in time

export type ExitReason =
  | Leaving
  | 'drain-timeout' // asked to drain, killed at the deadline
  | 'crashed' // exited by itself with a non-zero code
  | 'signaled' // killed by a signal the supervisor did not send
  | 'exited' // exited by itself with code 0

export interface ExitFacts {
  leaving?: Leaving
  /** the supervisor sent the kill at the drain deadline */
  killedAtDeadline: boolean
  code: number | null
  signal: string | null
}

export interface ExitVerdict {
  reason: ExitReason
  /** the supervisor wanted this exit: no restart, no crash counted */
  expected: boolean
  /** counts toward the crash rate and the slot's backoff */
  crash: boolean
  /** a SIGKILL the supervisor did not send: likely the kernel's OOM killer */
  possibleOom: boolean
}

export function classifyExit (facts: ExitFacts): ExitVerdict {
  const { leaving, killedAtDeadline, code, signal } = facts
  if (leaving === 'hung' || leaving === 'not-ready') {
    return { reason: leaving, expected: false, crash: true, possibleOom: false }
  }
  if (leaving) {
    return { reason: killedAtDeadline ? 'drain-timeout' : leaving, expected: true, crash: false, possibleOom: false }
  }
  if (signal) return { reason: 'signaled', expected: false, crash: true, possibleOom: signal === 'SIGKILL' }
  return { reason: code === 0 ? 'exited' : 'crashed', expected: false, crash: true, possibleOom: false }
}
