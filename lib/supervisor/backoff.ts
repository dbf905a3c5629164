// Per-slot restart delay: initialMs × factor^(n-1), capped at maxMs, ± jitter.
// Pure: the caller passes the clock's readings and the random source.

export interface BackoffPolicy {
  initialMs: number
  maxMs: number
  factor: number
  jitter: number
  resetAfterMs: number
}

/** The delay before restart number `attempt` (1-based), without jitter. */
export function baseDelay (policy: BackoffPolicy, attempt: number): number {
  const raw = policy.initialMs * policy.factor ** Math.max(0, attempt - 1)
  return Math.min(policy.maxMs, raw)
}

/** The delay before restart number `attempt`, with jitter; `random` returns [0, 1). */
export function restartDelay (policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const base = baseDelay(policy, attempt)
  const spread = base * policy.jitter * (random() * 2 - 1)
  return Math.max(0, Math.round(base + spread))
}

/**
 * The restart after a crash of a slot's worker that had served `upMs` (0 if it never
 * became ready): the slot's attempt number from now on, and how long to wait. The first
 * crash of a worker that served resetAfterMs or longer restarts at once and starts the
 * count again (as OTP and gunicorn do); each consecutive quicker crash waits longer.
 */
export function restartAfterCrash (policy: BackoffPolicy, previousAttempt: number, upMs: number, random: () => number = Math.random): { attempt: number, delayMs: number } {
  if (upMs >= policy.resetAfterMs) return { attempt: 0, delayMs: 0 }
  const attempt = previousAttempt + 1
  return { attempt, delayMs: restartDelay(policy, attempt, random) }
}
