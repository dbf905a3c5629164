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
 * The attempt number for a crash of a worker that was up `uptimeMs`: a worker that
 * stayed up `resetAfterMs` or longer starts the count again.
 */
export function nextAttempt (policy: BackoffPolicy, previousAttempt: number, uptimeMs: number): number {
  return uptimeMs >= policy.resetAfterMs ? 1 : previousAttempt + 1
}
