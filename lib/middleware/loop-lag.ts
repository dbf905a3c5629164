// Event-loop lag as seen by a request when it arrives. A histogram
// (perf_hooks.monitorEventLoopDelay) only learns about a stall after the loop
// turns again; while one poll phase runs hundreds of handlers back to back it
// still shows the old value. A timer that stamps each loop turn lets a request
// see how overdue the next turn already is.
import { performance } from 'node:perf_hooks'

/** Default tick interval: the lag is known to within about this many ms. */
export const LOOP_TICK_MS = 10

/**
 * How long the loop has been kept from turning, in ms: time since the tick
 * last ran, minus the interval it was due after. Never negative.
 */
export function eventLoopLag (now: number, lastTick: number, intervalMs: number): number {
  const lag = now - lastTick - intervalMs
  return lag > 0 ? lag : 0
}

export type Clock = () => number

export const monotonicClock: Clock = () => performance.now()

/** Stamps every turn of the loop with an unref'd, re-armed timer. */
export class LoopTicker {
  readonly intervalMs: number
  private lastTick: number
  private readonly clock: Clock
  private readonly timer: NodeJS.Timeout
  private readonly onTick: (now: number, lateness: number) => void

  /** onTick gets the time and how late this tick ran (the lag the loop just had). */
  constructor (onTick: (now: number, lateness: number) => void, intervalMs = LOOP_TICK_MS, clock: Clock = monotonicClock) {
    this.intervalMs = intervalMs
    this.clock = clock
    this.onTick = onTick
    this.lastTick = clock()
    this.timer = setTimeout(this.tick, intervalMs)
    // never keep the process alive just to measure it
    this.timer.unref()
  }

  /** Current lag, as a request arriving at `now` experiences it. */
  lag (now: number = this.clock()): number {
    return eventLoopLag(now, this.lastTick, this.intervalMs)
  }

  stop (): void {
    clearTimeout(this.timer)
  }

  private readonly tick = (): void => {
    const now = this.clock()
    const lateness = eventLoopLag(now, this.lastTick, this.intervalMs)
    this.lastTick = now
    // refresh() re-arms the same unref'd timer: no allocation, no catch-up burst after a stall
    this.timer.refresh()
    this.onTick(now, lateness)
  }
}
