// Heartbeats: how often workers beat and the primary checks, and which workers are
// hung. Pure, with the clock's readings passed in.

/**
 * How often a worker beats, and the primary checks the beats: four times per timeout,
 * so that a hang is seen within about a quarter more, and at least every second, since
 * the beats also carry the figures that recycling and status read (also with the hang
 * check off).
 */
export function heartbeatEvery (heartbeatTimeoutMs: number): number {
  return heartbeatTimeoutMs > 0 ? Math.max(100, Math.min(1000, Math.floor(heartbeatTimeoutMs / 4))) : 1000
}

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
