// Which workers are hung: pure, with the clock's readings passed in.

export interface Beating {
  lastBeatAt: number
}

/**
 * The workers whose last heartbeat is older than `timeoutMs`. When the check itself
 * ran far later than planned, the primary was stalled (a suspended machine, a
 * debugger): no worker can be blamed for beats the primary did not read, so none is.
 */
export function findHung<T extends Beating> (workers: Iterable<T>, now: number, previousCheckAt: number, checkEveryMs: number, timeoutMs: number): { hung: T[], primaryStalled: boolean } {
  const primaryStalled = now - previousCheckAt > checkEveryMs + timeoutMs / 2
  if (primaryStalled) return { hung: [], primaryStalled }
  const hung: T[] = []
  for (const w of workers) if (now - w.lastBeatAt > timeoutMs) hung.push(w)
  return { hung, primaryStalled }
}
