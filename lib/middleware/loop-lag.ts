// Event-loop lag as seen by a request when it arrives. A histogram
// (perf_hooks.monitorEventLoopDelay) only learns about a stall after the loop
// turns again; while one poll phase runs hundreds of handlers back to back it
// still shows the old value. A timer that stamps each loop turn lets a request
// see how overdue the next turn already is.
//
// That alone misses a loop that does turn, but only to run the next long
// handler: a worker that takes one new connection per turn (libuv accepts one
// per turn; under cluster's round-robin policy the primary hands over one per
// turn) reads each request alone, right after the timer ran, while the backlog
// waits in the kernel's accept queue or in the primary where the worker cannot
// see it. Such a loop is behind all the same: its timer runs late turn after
// turn and it never waits for I/O. So the lag a request is judged by counts
// from the last turn the loop was not behind, the last tick that ran on time
// or after the loop had waited for I/O, not from the last tick of any kind.
//
// Once the loop has been behind by more than the limit, the backlog it could
// not see is still there when it turns on time again (turns are short because
// requests are refused). It counts as caught up only once it has had spare
// time (it waited for I/O for a tenth of the time since it turned on time
// again: the queue is drained) or has kept turning on time for as long as the
// limit; until then requests are refused, cheaply, and the queue drains.
import { performance } from 'node:perf_hooks'

/** Default tick interval: the lag is known to within about this many ms. */
export const LOOP_TICK_MS = 10

/**
 * A gap between two ticks with at least this much idle time (ms the loop
 * waited for I/O) shows that the loop ran out of work it could see. Under a
 * flood the loop never waits (measured: under 0.01 ms per gap, either
 * scheduling policy); a client that sends its next request only after the
 * answer makes the loop wait about a round trip (0.3 ms and more).
 */
export const IDLE_EVIDENCE_MS = 0.1

/**
 * After the loop was behind by more than the limit: the share of the time
 * since it turned on time again that it must have waited for I/O to count as
 * caught up (the queue it could not see is drained). The same spare time as
 * a loop utilization of 0.9.
 */
export const CATCH_UP_IDLE_SHARE = 0.1

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

/** Cumulative ms the loop has spent waiting for I/O (performance.nodeTiming.idleTime; a number, nothing allocated). */
export type IdleReader = () => number

export const readLoopIdle: IdleReader = () => performance.nodeTiming.idleTime

/**
 * Stamps every turn of the loop with an unref'd, re-armed timer, and keeps
 * the last turn at which the loop was not behind: a tick at most one interval
 * late, or one after the loop waited for I/O; once it was behind by more than
 * `limitMs`, the tick at which it has caught up again.
 */
export class LoopTicker {
  readonly intervalMs: number
  /** the lag limit: beyond it, the loop must catch up before it counts as on time again. */
  readonly limitMs: number
  private lastTick: number
  /** the last tick at which the loop was not behind (the start, until the first tick). */
  private onTimeAt: number
  private lastIdle: number
  private ticked = false
  /** while catching up: the first tick on time again, and the idle time then (NaN otherwise). */
  private catchUpSince = Number.NaN
  private catchUpIdle = 0
  private readonly clock: Clock
  private readonly readIdle: IdleReader
  private readonly timer: NodeJS.Timeout
  private readonly onTick: (now: number, behindMs: number) => void

  /** onTick gets the time and behind(now) as this tick leaves it (0 when the loop was not behind). */
  constructor (
    onTick: (now: number, behindMs: number) => void,
    intervalMs = LOOP_TICK_MS,
    clock: Clock = monotonicClock,
    readIdle: IdleReader = readLoopIdle,
    limitMs = Number.POSITIVE_INFINITY,
  ) {
    this.intervalMs = intervalMs
    this.limitMs = limitMs
    this.clock = clock
    this.readIdle = readIdle
    this.onTick = onTick
    this.lastTick = clock()
    this.onTimeAt = this.lastTick
    this.lastIdle = readIdle()
    this.timer = setTimeout(this.tick, intervalMs)
    // never keep the process alive just to measure it
    this.timer.unref()
  }

  /** Current lag of this turn, as a request arriving at `now` experiences it. */
  lag (now: number = this.clock()): number {
    return eventLoopLag(now, this.lastTick, this.intervalMs)
  }

  /**
   * How long the loop has been behind at `now`: like lag(), but counted from
   * the last tick at which the loop was not behind, so a row of long turns
   * adds up. Never less than lag().
   */
  behind (now: number = this.clock()): number {
    return eventLoopLag(now, this.onTimeAt, this.intervalMs)
  }

  stop (): void {
    clearTimeout(this.timer)
  }

  private readonly tick = (): void => {
    const now = this.clock()
    const onTime = eventLoopLag(now, this.lastTick, this.intervalMs) <= this.intervalMs
    const idle = this.readIdle()
    if (!this.ticked) {
      // the first tick may be late from the app's own start-up: that is not a backlog
      this.onTimeAt = now
    } else if (this.behind(now) > this.limitMs) {
      this.catchUp(now, onTime, idle)
    } else if (onTime || idle - this.lastIdle >= IDLE_EVIDENCE_MS) {
      this.onTimeAt = now
    }
    this.lastIdle = idle
    this.lastTick = now
    this.ticked = true
    // refresh() re-arms the same unref'd timer: no allocation, no catch-up burst after a stall
    this.timer.refresh()
    this.onTick(now, this.behind(now))
  }

  /** Behind by more than the limit: on time again, and for long enough or with spare time? */
  private catchUp (now: number, onTime: boolean, idle: number): void {
    if (!onTime) {
      // a long turn again: catching up starts over
      this.catchUpSince = Number.NaN
      return
    }
    if (Number.isNaN(this.catchUpSince)) {
      this.catchUpSince = now
      this.catchUpIdle = idle
      return
    }
    const spanMs = now - this.catchUpSince
    if (spanMs >= this.limitMs || idle - this.catchUpIdle >= CATCH_UP_IDLE_SHARE * spanMs) {
      this.onTimeAt = now
      this.catchUpSince = Number.NaN
    }
  }
}
