// Memory readings for the heap/RSS limits. process.memoryUsage() costs a few
// microseconds and memory moves slowly, so it is sampled at most once per
// interval instead of on every request.

export interface MemoryReading {
  heapUsed: number
  rss: number
}

export type MemoryReader = () => MemoryReading

const readProcessMemory: MemoryReader = () => process.memoryUsage()

export class MemorySampler {
  #last: MemoryReading = { heapUsed: 0, rss: 0 }
  #sampledAt = Number.NEGATIVE_INFINITY
  readonly #intervalMs: number
  readonly #read: MemoryReader

  constructor (intervalMs: number, read: MemoryReader = readProcessMemory) {
    this.#intervalMs = intervalMs
    this.#read = read
  }

  /** The latest reading, refreshed first if it is older than the interval. */
  get (now: number): MemoryReading {
    if (now - this.#sampledAt >= this.#intervalMs) {
      const { heapUsed, rss } = this.#read()
      this.#last = { heapUsed, rss }
      this.#sampledAt = now
    }
    return this.#last
  }
}
