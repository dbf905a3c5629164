// The last lines of the cluster, in the primary: the workers' output and the primary's
// own events, in the order they were written, numbered. Bounded by a count of lines and
// of bytes, whichever is reached first; the oldest go. Followers are told of each new
// line as it is added.
import type { LineSource } from './format.js'

export interface Entry {
  /** 1, 2, 3…: the order of writing */
  seq: number
  time: number
  /** a worker's line (with its source), or one of the primary's events (its JSON line) */
  source?: LineSource
  bytes: Buffer
}

export interface HistoryLimits { lines: number, bytes: number }

export interface Filter {
  workerId?: number
  stream?: LineSource['stream']
  /** the primary's events too (only the workers' lines otherwise) */
  events: boolean
}

export function matches (entry: Entry, filter: Filter): boolean {
  if (!entry.source) return filter.events
  if (filter.workerId !== undefined && entry.source.workerId !== filter.workerId) return false
  return filter.stream === undefined || entry.source.stream === filter.stream
}

export class History {
  readonly #limits: HistoryLimits
  readonly #entries: Array<Entry | undefined> = []
  #first = 0
  #bytes = 0
  #seq = 0
  readonly #followers = new Set<(entry: Entry) => void>()

  constructor (limits: HistoryLimits) {
    this.#limits = limits
  }

  /** Keeps a copy of `bytes`, of its own size (a view of a larger buffer, or a slice of Node's shared pool, would keep all of that alive). */
  add (time: number, bytes: Buffer, source?: LineSource): void {
    const own = Buffer.allocUnsafeSlow(bytes.length)
    bytes.copy(own)
    const entry: Entry = { seq: ++this.#seq, time, source, bytes: own }
    this.#entries.push(entry)
    this.#bytes += bytes.length
    while (this.#entries.length - this.#first > this.#limits.lines || (this.#bytes > this.#limits.bytes && this.#entries.length - this.#first > 1)) {
      this.#bytes -= this.#entries[this.#first]!.bytes.length
      this.#entries[this.#first++] = undefined
    }
    // compact now and then, not at every line
    if (this.#first > 1024 && this.#first * 2 > this.#entries.length) {
      this.#entries.splice(0, this.#first)
      this.#first = 0
    }
    for (const follower of this.#followers) follower(entry)
  }

  /** The last `n` entries that match, oldest first. */
  last (n: number, filter: Filter): Entry[] {
    const found: Entry[] = []
    for (let i = this.#entries.length - 1; i >= this.#first && found.length < n; i--) {
      const entry = this.#entries[i]!
      if (matches(entry, filter)) found.push(entry)
    }
    return found.reverse()
  }

  /** Calls `follower` with every entry added from now on; returns how to stop. */
  follow (follower: (entry: Entry) => void): () => void {
    this.#followers.add(follower)
    return () => { this.#followers.delete(follower) }
  }

  get size (): { lines: number, bytes: number } {
    return { lines: this.#entries.length - this.#first, bytes: this.#bytes }
  }
}
