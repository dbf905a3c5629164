// Why a worker exited, from what the supervisor asked of it and what the OS reported.
// Pure, so every branch is unit-tested.

import type { ExitReason, Leaving } from '../common/lifecycle.js'

export interface ExitFacts {
  leaving?: Leaving
  /** the supervisor sent the kill at the drain deadline */
  killedAtDeadline: boolean
  code: number | null
  signal: string | null
  /** what the worker still had open as it exited, if it said */
  openAtExit?: { inflight: number, connections: number }
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

/** How an exit is logged: a crash, a hang or a failed start is an error; an unasked clean exit or a drain cut short, a warning. */
export function exitLevel (reason: ExitReason): 'info' | 'warn' | 'error' {
  switch (reason) {
    case 'drained': case 'recycled': return 'info'
    case 'drain-timeout': case 'drain-cut': case 'exited': return 'warn'
    default: return 'error'
  }
}

export function classifyExit (facts: ExitFacts): ExitVerdict {
  const { leaving, killedAtDeadline, code, signal, openAtExit } = facts
  if (leaving === 'hung' || leaving === 'not-ready' || leaving === 'listen-failed') {
    return { reason: leaving, expected: false, crash: true, possibleOom: false }
  }
  if (leaving) {
    if (killedAtDeadline) return { reason: 'drain-timeout', expected: true, crash: false, possibleOom: false }
    if (openAtExit && openAtExit.inflight + openAtExit.connections > 0) {
      return { reason: 'drain-cut', expected: true, crash: false, possibleOom: false }
    }
    return { reason: leaving, expected: true, crash: false, possibleOom: false }
  }
  if (signal) return { reason: 'signaled', expected: false, crash: true, possibleOom: signal === 'SIGKILL' }
  if (code === 0) return { reason: 'exited', expected: false, crash: true, possibleOom: false }
  return { reason: 'crashed', expected: false, crash: true, possibleOom: false }
}
