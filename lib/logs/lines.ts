// A stream's bytes cut into lines. Pure: chunks in, whole lines out, with what is left
// kept for the next chunk. A line longer than `maxLineBytes` is let out in pieces of that
// size (each marked as continued), so that one endless line cannot take the primary's
// memory; anything shorter comes out whole, however many chunks it arrived in.

export interface Line {
  /** the line's bytes, without its newline */
  bytes: Buffer
  /** a piece of a line longer than maxLineBytes, more of which follows */
  partial: boolean
}

export class LineSplitter {
  readonly #maxLineBytes: number
  #held: Buffer[] = []
  #heldBytes = 0

  constructor (maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes
  }

  /** The lines this chunk completes (a line wholly inside it is a view of it, not a copy). */
  push (chunk: Buffer): Line[] {
    const lines: Line[] = []
    let start = 0
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      if (this.#heldBytes === 0 && nl - start <= this.#maxLineBytes) {
        lines.push({ bytes: chunk.subarray(start, nl), partial: false })
      } else {
        this.#hold(chunk.subarray(start, nl), lines)
        lines.push({ bytes: this.#take(), partial: false })
      }
      start = nl + 1
    }
    if (start < chunk.length) this.#hold(chunk.subarray(start), lines)
    return lines
  }

  /** What is left when the stream ends: a last line without its newline, if any. */
  end (): Line[] {
    return this.#heldBytes > 0 ? [{ bytes: this.#take(), partial: false }] : []
  }

  #hold (bytes: Buffer, lines: Line[]): void {
    while (this.#heldBytes + bytes.length > this.#maxLineBytes) {
      const room = this.#maxLineBytes - this.#heldBytes
      this.#held.push(bytes.subarray(0, room))
      this.#heldBytes += room
      lines.push({ bytes: this.#take(), partial: true })
      bytes = bytes.subarray(room)
    }
    if (bytes.length === 0) return
    // a copy: held across chunks, it must not keep the whole chunk alive
    this.#held.push(Buffer.from(bytes))
    this.#heldBytes += bytes.length
  }

  #take (): Buffer {
    const line = this.#held.length === 1 ? this.#held[0] : Buffer.concat(this.#held, this.#heldBytes)
    this.#held = []
    this.#heldBytes = 0
    return line
  }
}
