// Why a worker exited, from what the supervisor asked of it and what the OS reported.
// Pure, so every branch is unit-tested.

import type { ExitReason, Leaving } from '../lifecycle.js'

export type { ExitReason, Leaving }

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
  if (leaving === 'hung' || leaving === 'not-ready' || leaving === 'listen-failed') {
    return { reason: leaving, expected: false, crash: true, possibleOom: false }
  }
  if (leaving) {
    return { reason: killedAtDeadline ? 'drain-timeout' : leaving, expected: true, crash: false, possibleOom: false }
  }
  if (signal) return { reason: 'signaled', expected: false, crash: true, possibleOom: signal === 'SIGKILL' }
  return { reason: code === 0 ? 'exited' : 'crashed', expected: false, crash: true, possibleOom: false }
}
