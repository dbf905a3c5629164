// The last lines of the cluster, in the primary: the workers' output and the primary's
// own events, in the order they were written, numbered. Bounded by a count of lines and
// of bytes, whichever is reached first; the oldest go. Followers are told of each new
// line as it is added.
//
// The bytes are kept in one ring buffer of the byte limit, and what is known of each line
// in typed arrays of the line limit: keeping a line allocates nothing. A line kept as an
// object of its own would live for the next thousand lines, long enough for V8 to move it
// to the old generation and to grow its young one, so that a chatty app would add tens
// of megabytes to the primary's heap for what is garbage a moment later.
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
  /** false: the primary's events only */
  workers?: boolean
}

export function matches (entry: Pick<Entry, 'source'>, filter: Filter): boolean {
  if (!entry.source) return filter.events
  if (filter.workers === false) return false
  if (filter.workerId !== undefined && entry.source.workerId !== filter.workerId) return false
  return filter.stream === undefined || entry.source.stream === filter.stream
}

export class History {
  readonly #limits: HistoryLimits
  readonly #followers = new Set<(entry: Entry) => void>()
  /** the kept lines' bytes, one after the other, wrapping at the end; made at the first line */
  #ring?: Buffer
  /** slot i: a line's time, its start in a stream of all bytes kept (the ring holds it at start % size), length and source */
  #time?: Float64Array
  #start?: Float64Array
  #length?: Float64Array
  #source: Array<LineSource | undefined> = []
  /** slot i of a line longer than the whole ring: its bytes, kept apart */
  readonly #alone = new Map<number, Buffer>()
  /** the oldest line's slot, and how many are kept */
  #oldest = 0
  #count = 0
  #bytes = 0
  #seq = 0
  /** where the next line starts in the stream of all bytes kept */
  #end = 0

  constructor (limits: HistoryLimits) {
    this.#limits = limits
  }

  /**
   * Keeps a copy of `buf` from `start` to `end` (the whole of it by default); followers
   * are given the entry (its bytes valid during the call only).
   */
  add (time: number, buf: Buffer, source?: LineSource, start = 0, end = buf.length): void {
    const size = this.#limits.bytes
    const length = end - start
    if (!this.#ring) {
      this.#ring = Buffer.alloc(size)
      this.#time = new Float64Array(this.#limits.lines)
      this.#start = new Float64Array(this.#limits.lines)
      this.#length = new Float64Array(this.#limits.lines)
      this.#source = new Array<LineSource | undefined>(this.#limits.lines).fill(undefined)
    }
    // the oldest go until the line fits (a line over the byte limit is kept alone)
    while (this.#count > 0 && (this.#count >= this.#limits.lines || this.#bytes + length > size)) this.#dropOldest()
    const slot = (this.#oldest + this.#count) % this.#limits.lines
    this.#count++
    this.#seq++
    this.#time![slot] = time
    this.#length![slot] = length
    this.#source[slot] = source
    this.#bytes += length
    this.#start![slot] = this.#end
    if (length > size) {
      this.#alone.set(slot, Buffer.from(buf.subarray(start, end)))
    } else {
      const at = this.#end % size
      const first = Math.min(length, size - at)
      buf.copy(this.#ring, at, start, start + first)
      if (first < length) buf.copy(this.#ring, 0, start + first, end)
      this.#end += length
    }
    if (this.#followers.size === 0) return
    const entry: Entry = { seq: this.#seq, time, source, bytes: buf.subarray(start, end) }
    for (const follower of this.#followers) follower(entry)
  }

  #dropOldest (): void {
    const slot = this.#oldest
    this.#bytes -= this.#length![slot]
    this.#source[slot] = undefined
    this.#alone.delete(slot)
    this.#oldest = (slot + 1) % this.#limits.lines
    this.#count--
  }

  /** The last `n` entries that match, oldest first, each with a copy of its bytes. */
  last (n: number, filter: Filter): Entry[] {
    const found: Entry[] = []
    for (let i = this.#count - 1; i >= 0 && found.length < n; i--) {
      const slot = (this.#oldest + i) % this.#limits.lines
      const source = this.#source[slot]
      if (!matches({ source }, filter)) continue
      found.push({ seq: this.#seq - (this.#count - 1 - i), time: this.#time![slot], source, bytes: this.#bytesOf(slot) })
    }
    return found.reverse()
  }

  #bytesOf (slot: number): Buffer {
    const alone = this.#alone.get(slot)
    if (alone) return Buffer.from(alone)
    const size = this.#limits.bytes
    const length = this.#length![slot]
    const at = this.#start![slot] % size
    const copy = Buffer.allocUnsafeSlow(length)
    const first = Math.min(length, size - at)
    this.#ring!.copy(copy, 0, at, at + first)
    if (first < length) this.#ring!.copy(copy, first, 0, length - first)
    return copy
  }

  /** Calls `follower` with every entry added from now on; returns how to stop. */
  follow (follower: (entry: Entry) => void): () => void {
    this.#followers.add(follower)
    return () => { this.#followers.delete(follower) }
  }

  get size (): { lines: number, bytes: number } {
    return { lines: this.#count, bytes: this.#bytes }
  }
}
