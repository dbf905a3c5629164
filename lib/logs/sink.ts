// The one place the primary's log lines pass through: the workers' lines (captured from
// their stdout and stderr) and the primary's own events. Each is formatted, kept in the
// history that `cluster-run logs` reads, counted, and written out.
import { History, type HistoryLimits } from './history.js'
import { jsonLines, prettyEvents, prettyLine, type LineSource } from './format.js'
import type { LineBatch } from './lines.js'
import { LogOutput, type OutputOptions } from './output.js'

export interface SinkOptions {
  /** human-readable lines instead of JSON */
  pretty: boolean
  /** colours (pretty mode, on a terminal) */
  colour: boolean
  history: HistoryLimits
  output: OutputOptions
}

/** Lines and bytes a worker process has written. */
export interface OutputCounts { lines: number, bytes: number }

const LEVEL = /^\{"level":(\d+)/

export class LogSink {
  readonly history: History
  readonly #output: LogOutput
  readonly #options: SinkOptions
  readonly #counts = new Map<number, OutputCounts>()
  #pretty?: (line: string) => string
  /** lines that followers too slow to take them did not get */
  missed = 0

  constructor (options: SinkOptions) {
    this.#options = options
    this.history = new History(options.history)
    this.#output = new LogOutput(options.output)
    if (options.pretty) this.#pretty = prettyEvents(options.colour)
  }

  /**
   * Lines of a worker's output (those of one read of its pipe), written out in one go;
   * false when the output is full (wait for onDrain). `source`: one object per worker and
   * stream, for all its lines.
   */
  workerLines (batch: LineBatch, source: LineSource, time = Date.now()): boolean {
    if (batch.count === 0) return true
    let counts = this.#counts.get(source.pid)
    if (!counts) this.#counts.set(source.pid, counts = { lines: 0, bytes: 0 })
    const { bufs, starts, ends } = batch
    for (let i = 0; i < batch.count; i++) {
      this.history.add(time, bufs[i], source, starts[i], ends[i])
      counts.lines++
      counts.bytes += ends[i] - starts[i]
    }
    const error = source.stream === 'stderr'
    if (this.#pretty) {
      const pieces: Buffer[] = []
      for (let i = 0; i < batch.count; i++) pieces.push(...prettyLine(batch.line(i), source, this.#options.colour))
      return this.#output.write(Buffer.concat(pieces), error)
    }
    return this.#output.write(jsonLines(batch, source, time), error)
  }

  /** One of the primary's events: a JSON line from its logger, with its newline. */
  write (line: string): void {
    const level = Number(LEVEL.exec(line)?.[1] ?? 30)
    this.history.add(Date.now(), Buffer.from(line.endsWith('\n') ? line.slice(0, -1) : line))
    this.#output.write(Buffer.from(this.#pretty ? this.#pretty(line) : line), level >= 40)
  }

  onDrain (fn: () => void): void { this.#output.onDrain(fn) }

  /** What a worker process has written so far. */
  countsOf (pid: number): OutputCounts | undefined { return this.#counts.get(pid) }

  /** Forgets a worker process that is gone (its counts were reported). */
  forget (pid: number): void { this.#counts.delete(pid) }

  reopen (): void { this.#output.reopen() }

  close (): Promise<void> { return this.#output.close() }
}
