// A worker's stdout and stderr, read by the primary line by line. Captured (the
// default), every line goes through the sink: attributed, kept, counted, written whole.
// Passed through ('inherit'), the workers write to the primary's stdout themselves and
// only stderr is read, as it passes, for its last lines. Either way a crash's last
// words are at hand. While the sink's output is full, the worker's pipes are not read:
// its writes then block (the preload makes them blocking), and the primary's memory
// stays bounded whatever the workers write.
import type { ChildProcess } from 'node:child_process'
import type { Readable } from 'node:stream'
import { LineBatch, LineSplitter } from './lines.js'
import type { LineSource, OutputStream } from './format.js'
import type { LogSink } from './sink.js'

/** A line longer than this is written in pieces of this size. */
const MAX_LINE_BYTES = 4 * 1024 * 1024
/**
 * After each read of a worker's pipe that is not full, it is left alone this long: an app
 * that writes line by line (pino's synchronous writes) is then read tens of lines at a
 * time instead of one, which takes a read, a wake-up and a write of the primary per line
 * otherwise.
 */
const GATHER_MS = 10
/** What one read of a pipe takes at most (libuv reads 64 KB at a time). */
const FULL_READ_BYTES = 64 * 1024
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
  /** the stderr lines of a batch, kept for a crash's event */
  const keepTail = (batch: LineBatch): void => {
    for (let i = Math.max(0, batch.count - TAIL_LINES); i < batch.count; i++) {
      tail.push(batch.bufs[i].toString('utf8', batch.starts[i], Math.min(batch.ends[i], batch.starts[i] + TAIL_LINE_CHARS)))
    }
    if (tail.length > TAIL_LINES) tail.splice(0, tail.length - TAIL_LINES)
  }
  const streams: Array<[OutputStream, Readable | null]> = [['stdout', child.stdout], ['stderr', child.stderr]]
  let open = streams.filter(([, readable]) => readable).length
  const ended = (): void => { if (--open === 0) sink.forget(source.pid) }
  for (const [stream, readable] of streams) {
    if (!readable) continue
    const splitter = new LineSplitter(MAX_LINE_BYTES)
    const batch = new LineBatch()
    const from: LineSource = { ...source, stream }
    if (mode === 'inherit') {
      // passed through as it comes, as before capture existed
      readable.on('data', (chunk: Buffer) => {
        process.stderr.write(chunk)
        splitter.push(chunk, batch)
        keepTail(batch)
        batch.clear()
      })
      continue
    }
    let waits = 0 // 1 while gathering, +1 while the output is full
    const hold = (): void => { if (waits++ === 0) readable.pause() }
    const release = (): void => { if (--waits === 0) readable.resume() }
    /** writes out the lines the splitter put in the batch */
    const take = (): void => {
      if (stream === 'stderr') keepTail(batch)
      const written = sink.workerLines(batch, from)
      batch.clear()
      if (!written) {
        hold()
        sink.onDrain(release)
      }
    }
    readable.on('data', (chunk: Buffer) => {
      splitter.push(chunk, batch)
      take()
      // a full read means more is waiting: read on at once (a pause per read would cap a
      // worker at a read per GATHER_MS, and leave its output queued in it at shutdown)
      if (chunk.length >= FULL_READ_BYTES) return
      hold()
      setTimeout(release, GATHER_MS)
    })
    // a last line without its newline is written when the worker's end of the pipe closes
    readable.on('end', () => {
      splitter.end(batch)
      take()
      ended()
    })
  }
  return { stderrTail: () => [...tail] }
}
