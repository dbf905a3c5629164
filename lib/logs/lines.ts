// A stream's bytes cut into lines. Pure: chunks in, whole lines out, with what is left
// kept for the next chunk. A line longer than `maxLineBytes` is let out in pieces of that
// size, so that one endless line cannot take the primary's memory; anything shorter
// comes out whole, however many chunks it arrived in.
//
// The lines of a read are given as ranges of buffers in a batch whose arrays are reused
// from read to read: cutting a chunk of a few hundred lines makes no object per line.

/** Line i is `bufs[i]` from `starts[i]` to `ends[i]` (without its newline); valid until the next clear(). */
export class LineBatch {
  count = 0
  readonly bufs: Buffer[] = []
  readonly starts: number[] = []
  readonly ends: number[] = []

  add (buf: Buffer, start: number, end: number): void {
    const i = this.count++
    this.bufs[i] = buf
    this.starts[i] = start
    this.ends[i] = end
  }

  /** Line i as a Buffer of its own (a view: for tests and rare paths). */
  line (i: number): Buffer {
    return this.bufs[i].subarray(this.starts[i], this.ends[i])
  }

  /** Empties the batch, letting go of its buffers but keeping its arrays. */
  clear (): void {
    this.bufs.fill(undefined as unknown as Buffer, 0, this.count)
    this.count = 0
  }
}

export class LineSplitter {
  readonly #maxLineBytes: number
  #held: Buffer[] = []
  #heldBytes = 0

  constructor (maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes
  }

  /** Adds to `batch` the lines this chunk completes (a line wholly inside it as a range of it, not a copy). */
  push (chunk: Buffer, batch: LineBatch): void {
    let start = 0
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      if (this.#heldBytes === 0 && nl - start <= this.#maxLineBytes) {
        batch.add(chunk, start, nl)
      } else {
        this.#hold(chunk.subarray(start, nl), batch)
        this.#take(batch)
      }
      start = nl + 1
    }
    if (start < chunk.length) this.#hold(chunk.subarray(start), batch)
  }

  /** What is left when the stream ends: a last line without its newline, if any. */
  end (batch: LineBatch): void {
    if (this.#heldBytes > 0) this.#take(batch)
  }

  #hold (bytes: Buffer, batch: LineBatch): void {
    while (this.#heldBytes + bytes.length > this.#maxLineBytes) {
      const room = this.#maxLineBytes - this.#heldBytes
      this.#held.push(bytes.subarray(0, room))
      this.#heldBytes += room
      this.#take(batch)
      bytes = bytes.subarray(room)
    }
    if (bytes.length === 0) return
    // a copy: held across chunks, it must not keep the whole chunk alive
    this.#held.push(Buffer.from(bytes))
    this.#heldBytes += bytes.length
  }

  #take (batch: LineBatch): void {
    const line = this.#held.length === 1 ? this.#held[0] : Buffer.concat(this.#held, this.#heldBytes)
    this.#held = []
    this.#heldBytes = 0
    batch.add(line, 0, line.length)
  }
}
