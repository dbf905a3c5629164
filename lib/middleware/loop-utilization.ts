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
// keeps readings a step apart (taken by the guard's tick or by a request,
// whichever comes first) and measures from the newest one at least a window
// old to a reading taken now. A blocked loop delays the tick, but a reading
// taken by the request itself counts the time the loop has been blocked, so a
// request arriving in the middle of a long busy stretch sees it.
import { performance } from 'node:perf_hooks'

/** Cumulative loop time since the loop started, in ms (as from performance.eventLoopUtilization()). */
export interface EluReading {
  idle: number
  active: number
}

export type EluReader = () => EluReading

const reading: EluReading = { idle: 0, active: 0 }

/**
 * What performance.eventLoopUtilization() reads, into one reused object (it
 * allocates a new one per call): cheap enough for every request, and the
 * shed path allocates nothing. The caller copies what it keeps.
 */
const readEventLoopUtilization: EluReader = () => {
  const timing = performance.nodeTiming
  const idle = timing.idleTime
  reading.idle = idle
  // as Node computes it: loop time since the loop started, minus the time it idled
  reading.active = timing.loopStart > 0 ? performance.now() - timing.loopStart - idle : 0
  return reading
}

/** Default length of the window, ms. */
export const ELU_WINDOW_MS = 300
/** Readings are kept every windowMs / ELU_STEPS of loop time. */
const ELU_STEPS = 10

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

/**
 * Utilization over a sliding window of loop time: from the newest kept
 * reading at least `windowMs` old to a reading taken now. Readings are kept
 * at most every windowMs / ELU_STEPS; while handlers block the loop they are
 * kept more sparsely, and the window stretches back to the last one old
 * enough. Time comes from the readings themselves (idle + active), so the
 * window can be driven by injected readings.
 */
export class UtilizationWindow {
  readonly windowMs: number
  readonly #stepMs: number
  /** with less history than this, report 0: a few ms after start-up say nothing. */
  readonly #minSpanMs: number
  readonly #read: EluReader
  /** ring of kept readings; `newest` is the index of the latest. */
  readonly #ring: EluReading[]
  #newest = 0

  constructor (windowMs = ELU_WINDOW_MS, read: EluReader = readEventLoopUtilization) {
    this.windowMs = windowMs
    this.#stepMs = windowMs / ELU_STEPS
    this.#minSpanMs = windowMs / 2
    this.#read = read
    const first = read()
    // two spare slots: the one old enough is found even when a step ran late
    this.#ring = Array.from({ length: ELU_STEPS + 2 }, () => copy(first))
  }

  /** Takes a reading, keeps it (copied into the ring's own slot) if a step has passed since the last one kept, and returns it. */
  sample (): EluReading {
    const reading = this.#read()
    if (elapsedOf(reading) - elapsedOf(this.#ring[this.#newest]) >= this.#stepMs) {
      this.#newest = (this.#newest + 1) % this.#ring.length
      const slot = this.#ring[this.#newest]
      slot.idle = reading.idle
      slot.active = reading.active
    }
    return reading
  }

  /**
   * Utilization over the last windowMs or a little more (up to the last
   * reading kept before it); 0 until half a window of loop time has passed.
   */
  current (): number {
    const now = this.sample()
    const at = elapsedOf(now)
    const size = this.#ring.length
    // newest to oldest; the oldest is the slot after the newest
    for (let back = 0; back < size; back++) {
      const from = this.#ring[(this.#newest + size - back) % size]
      if (at - elapsedOf(from) >= this.windowMs) return utilizationBetween(from, now)
    }
    const oldest = this.#ring[(this.#newest + 1) % size]
    return at - elapsedOf(oldest) >= this.#minSpanMs ? utilizationBetween(oldest, now) : 0
  }
}

function copy ({ idle, active }: EluReading): EluReading {
  return { idle, active }
}
