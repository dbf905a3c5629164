// Overload episodes. Shedding is decided per request from the readings of the
// moment; an episode groups the sheds around one stall so that entering and
// leaving overload is reported once, not per request and not on every flap at
// the boundary. Time is passed in, so the machine is testable with a fake clock.
import type { Exceeded } from './limits.js'

export interface OverloadEpisode {
  /** the limit that started the episode. */
  readonly start: Exceeded
  /** the limit seen exceeded most recently (updated in place). */
  readonly latest: Exceeded
  readonly since: number
  lastExceededAt: number
  shed: number
}

export interface OverloadEnded {
  start: Exceeded
  durationMs: number
  shed: number
}

export class OverloadTracker {
  /** requests shed since creation, over all episodes. */
  shed = 0
  /** number of episodes started. */
  episodes = 0
  current: OverloadEpisode | null = null
  readonly #recoveryMs: number

  /** recoveryMs: how long every limit must stay clear before the episode ends. */
  constructor (recoveryMs: number) {
    this.#recoveryMs = recoveryMs
  }

  get active (): boolean {
    return this.current !== null
  }

  /**
   * A limit is exceeded at `now`. Returns the new episode if this starts one.
   * `exceeded` is copied (the caller may reuse it); while an episode lasts
   * nothing is allocated.
   */
  exceeded (now: number, exceeded: Exceeded): OverloadEpisode | null {
    const episode = this.current
    if (episode !== null) {
      const latest = episode.latest
      latest.reason = exceeded.reason
      latest.value = exceeded.value
      latest.limit = exceeded.limit
      episode.lastExceededAt = now
      return null
    }
    this.episodes++
    this.current = { start: { ...exceeded }, latest: { ...exceeded }, since: now, lastExceededAt: now, shed: 0 }
    return this.current
  }

  /** A request was refused during the current episode. */
  recordShed (): void {
    this.shed++
    if (this.current !== null) this.current.shed++
  }

  /** Every limit is clear at `now`. Returns the summary if the episode ends here. */
  clear (now: number): OverloadEnded | null {
    const episode = this.current
    if (episode === null || now - episode.lastExceededAt < this.#recoveryMs) return null
    this.current = null
    return { start: episode.start, durationMs: now - episode.since, shed: episode.shed }
  }
}
