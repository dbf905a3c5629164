// Event-loop utilization (ELU): the share of wall time the loop spent running
// callbacks instead of waiting for I/O, over the last few hundred ms.
//
// Loop lag and in-flight counts only see a backlog the worker has already read.
// Under cluster's round-robin policy the primary hands a busy worker one
// connection per turn of its loop, so every request arrives alone, lag stays at
// one handler's duration and nothing is in flight, while the backlog waits in
// the primary. The loop is then busy nearly all the time, and that is what ELU
// measures.
//
// Node reports cumulative idle and active time since the loop started; the
// utilization of a span is the difference of two such readings. The window
// keeps a few readings spaced `windowMs / slots` apart (taken by the guard's
// tick or by a request, whichever comes first) and measures from the oldest
// to a reading taken now. A blocked loop delays the tick, but the reading taken
// by the request itself counts the time the loop is blocked in, so a request
// arriving in the middle of a long busy stretch sees it.
import { performance } from 'node:perf_hooks'

/** Cumulative loop time since the loop started, in ms (as from performance.eventLoopUtilization()). */
export interface EluReading {
  idle: number
  active: number
}

export type EluReader = () => EluReading

/** About 0.1 µs: cheap enough to call on every request. */
export const readEventLoopUtilization: EluReader = () => performance.eventLoopUtilization()

/** Default length of the window, ms. */
export const ELU_WINDOW_MS = 500
/** Readings kept: the window slides in steps of windowMs / slots. */
export const ELU_SLOTS = 5

/**
 * Utilization between two cumulative readings: active time over elapsed time,
 * from 0 to 1. 0 when no time passed (or the loop has not started).
 */
export function utilizationBetween (earlier: EluReading, later: EluReading): number {
  const active = later.active - earlier.active
  const elapsed = active + later.idle - earlier.idle
  if (!(elapsed > 0) || active <= 0) return 0
  return active >= elapsed ? 1 : active / elapsed
}

/** Loop time covered by a reading, ms since the loop started. */
function elapsedOf (reading: EluReading): number {
  return reading.idle + reading.active
}

/** Utilization over a sliding window of loop time. Time is taken from the readings themselves. */
export class UtilizationWindow {
  readonly windowMs: number
  private readonly stepMs: number
  /** below this much measured time, report 0: a few ms after start-up say nothing. */
  private readonly minSpanMs: number
  private readonly read: EluReader
  /** ring of readings, oldest at `oldest`. */
  private readonly ring: EluReading[]
  private oldest = 0
  private lastSampleAt: number

  constructor (windowMs = ELU_WINDOW_MS, slots = ELU_SLOTS, read: EluReader = readEventLoopUtilization) {
    this.windowMs = windowMs
    this.stepMs = windowMs / slots
    this.minSpanMs = windowMs / 2
    this.read = read
    const first = copy(read())
    this.ring = Array.from({ length: slots }, () => first)
    this.lastSampleAt = elapsedOf(first)
  }

  /** Takes a reading, keeps it if a step has passed since the last one kept, and returns it. */
  sample (): EluReading {
    const reading = this.read()
    const at = elapsedOf(reading)
    if (at - this.lastSampleAt >= this.stepMs) {
      this.ring[this.oldest] = copy(reading)
      this.oldest = (this.oldest + 1) % this.ring.length
      this.lastSampleAt = at
    }
    return reading
  }

  /**
   * Utilization from the oldest kept reading to now: over the last
   * (slots - 1) / slots to 1 window while the loop turns, longer while it is
   * blocked. 0 until half a window of loop time has been seen.
   */
  current (): number {
    const now = this.sample()
    const from = this.ring[this.oldest]!
    if (elapsedOf(now) - elapsedOf(from) < this.minSpanMs) return 0
    return utilizationBetween(from, now)
  }
}

function copy ({ idle, active }: EluReading): EluReading {
  return { idle, active }
}
