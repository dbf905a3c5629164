// A worker's stdout and stderr, read by the primary line by line. Captured (the
// default), every line goes through the sink: attributed, kept, counted, written whole.
// Passed through ('inherit'), the workers write to the primary's stdout themselves and
// only stderr is read, as it passes, for its last lines. Either way a crash's last
// words are at hand. While the sink's output is full, the worker's pipes are not read:
// its writes then block (the preload makes them blocking), and the primary's memory
// stays bounded whatever the workers write.
import type { ChildProcess } from 'node:child_process'
import type { Readable } from 'node:stream'
import { LineSplitter } from './lines.js'
import type { LineSource, OutputStream } from './format.js'
import type { LogSink } from './sink.js'

/** A line longer than this is written in pieces of this size. */
const MAX_LINE_BYTES = 4 * 1024 * 1024
/**
 * After each read of a worker's pipe, it is left alone this long: an app that writes line
 * by line (pino's synchronous writes) is then read tens of lines at a time instead of one,
 * which takes a read, a wake-up and a write of the primary per line otherwise.
 */
const GATHER_MS = 10
/** The last lines of stderr kept for a crash's event, each cut to this length. */
const TAIL_LINES = 20
const TAIL_LINE_CHARS = 2000

export type WorkerOutputMode = 'capture' | 'inherit'

/** How the workers' stdio is set up for each mode: [stdin, stdout, stderr, ipc]. */
export function stdioFor (mode: WorkerOutputMode): ['ignore', 'pipe' | 'inherit', 'pipe', 'ipc'] {
  return ['ignore', mode === 'capture' ? 'pipe' : 'inherit', 'pipe', 'ipc']
}

export interface Captured {
  /** the last lines the worker wrote to stderr */
  stderrTail: () => string[]
}

export function captureOutput (child: ChildProcess, source: Omit<LineSource, 'stream'>, sink: LogSink, mode: WorkerOutputMode): Captured {
  const tail: string[] = []
  const keepTail = (stream: OutputStream, bytes: Buffer): void => {
    if (stream !== 'stderr') return
    tail.push(bytes.toString('utf8', 0, TAIL_LINE_CHARS))
    if (tail.length > TAIL_LINES) tail.shift()
  }
  const streams: Array<[OutputStream, Readable | null]> = [['stdout', child.stdout], ['stderr', child.stderr]]
  let open = streams.filter(([, readable]) => readable).length
  const ended = (): void => { if (--open === 0) sink.forget(source.pid) }
  for (const [stream, readable] of streams) {
    if (!readable) continue
    const splitter = new LineSplitter(MAX_LINE_BYTES)
    const from: LineSource = { ...source, stream }
    if (mode === 'inherit') {
      // passed through as it comes, as before capture existed
      readable.on('data', (chunk: Buffer) => {
        process.stderr.write(chunk)
        for (const line of splitter.push(chunk)) keepTail(stream, line.bytes)
      })
      continue
    }
    let waits = 0 // 1 while gathering, +1 while the output is full
    const hold = (): void => { if (waits++ === 0) readable.pause() }
    const release = (): void => { if (--waits === 0) readable.resume() }
    const take = (lines: ReturnType<LineSplitter['push']>): void => {
      if (stream === 'stderr') for (const line of lines) keepTail(stream, line.bytes)
      if (!sink.workerLines(lines.map((line) => line.bytes), from)) {
        hold()
        sink.onDrain(release)
      }
    }
    readable.on('data', (chunk: Buffer) => {
      take(splitter.push(chunk))
      hold()
      setTimeout(release, GATHER_MS)
    })
    // a last line without its newline is written when the worker's end of the pipe closes
    readable.on('end', () => {
      take(splitter.end())
      ended()
    })
  }
  return { stderrTail: () => [...tail] }
}
