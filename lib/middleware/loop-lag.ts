// Event-loop lag as seen by a request when it arrives. A histogram
// (perf_hooks.monitorEventLoopDelay) only learns about a stall after the loop
// turns again; while one poll phase runs hundreds of handlers back to back it
// still shows the old value. A timer that stamps each loop turn lets a request
// see how overdue the next turn already is.
//
// That alone misses a loop that does turn, but only to run the next long
// handler: a worker takes one new connection per turn (libuv accepts one per
// turn; under cluster's round-robin policy the primary hands over one per
// turn) and reads its request alone, right after the timer ran, while the
// backlog waits in the kernel's accept queue or in the primary, where the
// worker cannot see it. Such a loop is behind all the same: its timer runs
// late turn after turn and it never waits for I/O. So the ticker also keeps
// how long the loop has been behind: since the last tick that ran on time, or
// since the loop last waited for I/O (nothing it could see was queued then;
// the wait is taken to have come first in its gap between two ticks, so the
// long turn after it still counts).
//
// The first request of a new connection may have waited out of sight that
// long, and is judged by it; a request on a connection the worker already
// serves was readable as soon as the loop turned, and the lag of this turn is
// what it waited. Once a request from out of sight finds the loop behind by
// more than the limit, the backlog it came from is still there when the loop
// turns on time again (turns are short because requests are refused), so the
// loop catches up first: every request is judged by how long the loop has
// been behind, and refused, cheaply, until a tick at which the loop has
// waited for I/O a tenth of the time since it began to catch up (the queue is
// drained), or no new connection has come for as long as the limit (the
// queue that hands them over one per turn is empty; the connections already
// served are judged by the lag of their turn again).
import { performance } from 'node:perf_hooks'

/** Default tick interval: the lag is known to within about this many ms. */
const LOOP_TICK_MS = 10

/**
 * A gap between two ticks with at least this much idle time (ms the loop
 * waited for I/O) shows that the loop ran out of work it could see. Under a
 * flood the loop never waits (measured: under 0.01 ms per gap, either
 * scheduling policy); a client that sends its next request only after the
 * answer often makes the loop wait about a round trip (0.3 ms and more).
 */
export const IDLE_EVIDENCE_MS = 0.1

/**
 * While catching up: the share of the time since it began that the loop must
 * have waited for I/O to count as caught up (the queue it could not see is
 * drained). The spare time of a loop utilization of 0.9.
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

const readLoopIdle: IdleReader = () => performance.nodeTiming.idleTime

/**
 * Stamps every turn of the loop with an unref'd, re-armed timer, and keeps
 * the last moment the loop was not behind: a tick at most one interval late,
 * the end of a wait for I/O; while catching up, the tick at which it has
 * caught up.
 */
export class LoopTicker {
  readonly intervalMs: number
  /** the lag limit: a request from out of sight that finds the loop further behind makes it catch up. */
  readonly limitMs: number
  #lastTick: number
  /** the last moment the loop was not behind (the start, until the first tick). */
  #onTimeAt: number
  #lastIdle: number
  #ticked = false
  #catching = false
  /** while catching up: when it began, and the idle time then. */
  #catchUpSince = 0
  #catchUpIdle = 0
  /** when a request from out of sight last came. */
  #lastUnseenAt = Number.NEGATIVE_INFINITY
  readonly #clock: Clock
  readonly #readIdle: IdleReader
  readonly #timer: NodeJS.Timeout
  readonly #onTick: (now: number, behindMs: number) => void

  /** onTick gets the time and behind(now) as this tick leaves it (0 when the loop was not behind). */
  constructor (
    onTick: (now: number, behindMs: number) => void,
    intervalMs = LOOP_TICK_MS,
    clock: Clock = monotonicClock,
    readIdle: IdleReader = readLoopIdle,
    limitMs = Number.POSITIVE_INFINITY
  ) {
    this.intervalMs = intervalMs
    this.limitMs = limitMs
    this.#clock = clock
    this.#readIdle = readIdle
    this.#onTick = onTick
    this.#lastTick = clock()
    this.#onTimeAt = this.#lastTick
    this.#lastIdle = readIdle()
    this.#timer = setTimeout(this.tick, intervalMs)
    // never keep the process alive just to measure it
    this.#timer.unref()
  }

  /** Current lag of this turn, as a request arriving at `now` experiences it. */
  lag (now: number = this.#clock()): number {
    return eventLoopLag(now, this.#lastTick, this.intervalMs)
  }

  /**
   * How long the loop has been behind at `now`: like lag(), but counted from
   * the last tick at which the loop was not behind, so a row of long turns
   * adds up. Never less than lag().
   */
  behind (now: number = this.#clock()): number {
    return eventLoopLag(now, this.#onTimeAt, this.intervalMs)
  }

  /**
   * The lag of a request that may have waited where the loop cannot see it
   * (the first of a new connection): behind(now). Beyond the limit, the loop
   * begins to catch up; while it does, such requests keep it catching up.
   */
  unseen (now: number = this.#clock()): number {
    this.#lastUnseenAt = now
    const behind = this.behind(now)
    if (behind > this.limitMs && !this.#catching) {
      this.#catching = true
      this.#catchUpSince = now
      this.#catchUpIdle = this.#readIdle()
    }
    return behind
  }

  /** Catching up: every request is to be judged by behind(). */
  get catchingUp (): boolean {
    return this.#catching
  }

  /** Whether its timer keeps the process alive (never: it is unref'd). */
  hasRef (): boolean {
    return this.#timer.hasRef()
  }

  stop (): void {
    clearTimeout(this.#timer)
  }

  /** One tick, as its timer runs it (the tests run it by hand). */
  readonly tick = (): void => {
    const now = this.#clock()
    const onTime = eventLoopLag(now, this.#lastTick, this.intervalMs) <= this.intervalMs
    const idle = this.#readIdle()
    if (!this.#ticked) {
      // the first tick may be late from the app's own start-up: that is not a backlog
      this.#onTimeAt = now
    } else if (this.#catching) {
      this.#catchUp(now, idle)
    } else if (onTime) {
      this.#onTimeAt = now
    } else if (idle - this.#lastIdle >= IDLE_EVIDENCE_MS) {
      // it waited for I/O in this gap, at the earliest right after the last tick:
      // behind since the wait ended, by the busy rest of the gap at most
      const waitedUntil = this.#lastTick + (idle - this.#lastIdle)
      if (waitedUntil > this.#onTimeAt) this.#onTimeAt = waitedUntil
    }
    this.#lastIdle = idle
    this.#lastTick = now
    this.#ticked = true
    // refresh() re-arms the same unref'd timer: no allocation, no catch-up burst after a stall
    this.#timer.refresh()
    this.#onTick(now, this.behind(now))
  }

  /** Caught up: spare time since it began, or no request from out of sight for as long as the limit? */
  #catchUp (now: number, idle: number): void {
    const spanMs = now - this.#catchUpSince
    const spare = spanMs >= this.intervalMs && idle - this.#catchUpIdle >= CATCH_UP_IDLE_SHARE * spanMs
    if (spare || now - this.#lastUnseenAt >= this.limitMs) {
      this.#onTimeAt = now
      this.#catching = false
    }
  }
}
