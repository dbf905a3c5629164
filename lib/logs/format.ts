// How a worker's line is written out by the primary. Pure.
//
// JSON (the default, as the primary's own lines): a line that is a JSON object keeps its
// bytes, with the worker's slot and generation (and its pid, unless the line has one,
// as pino's do) put first among its fields, never escaped into a string; any other line
// becomes one line of the primary's log, `event: 'worker.output'`, with its text.
// Pretty: a short prefix naming the worker, coloured by slot on a terminal; the primary's
// events one line each, by pino-pretty.
import { createRequire } from 'node:module'
import type PinoPretty from 'pino-pretty'
import { LineBatch } from './lines.js'

export type OutputStream = 'stdout' | 'stderr'

export interface LineSource {
  workerId: number
  pid: number
  generation: number
  stream: OutputStream
}

const OPEN = 0x7b // {
const CLOSE = 0x7d // }

/**
 * Where the worker's fields go in a line (bytes `start` to `end` of `buf`) that looks like
 * one JSON object, `{` first and `}` last (spaces aside): just after its `{`. -1 for any
 * other line. Not parsed: the primary reads every line.
 */
function objectOpen (buf: Buffer, start: number, end: number): number {
  let first = start
  let last = end - 1
  while (first <= last && isSpace(buf[first])) first++
  while (last >= first && isSpace(buf[last])) last--
  return last > first && buf[first] === OPEN && buf[last] === CLOSE ? first : -1
}

/** Whether the line looks like one JSON object. */
export function isJsonObject (line: Buffer): boolean {
  return objectOpen(line, 0, line.length) !== -1
}

const isSpace = (byte: number): boolean => byte === 0x20 || byte === 0x09 || byte === 0x0d

/** What a line's own pid field starts with. */
const PID = Buffer.from('"pid":')

/** The fields put first in a worker's JSON line, made once per worker: with and without its pid, each with and without a comma after. */
const fieldsOf = new WeakMap<LineSource, Buffer[]>()

/**
 * The worker's fields to put after the `{` at `open` of a JSON object line ending at
 * `end`: its slot and generation, and its pid unless the line has one (`hasPid`), with a
 * comma unless the object is empty. `source` should be one object per worker and stream:
 * what is made of it once is kept with it.
 */
function fieldsFor (source: LineSource, buf: Buffer, open: number, hasPid: boolean): Buffer {
  let made = fieldsOf.get(source)
  if (!made) {
    const base = `"workerId":${source.workerId},"generation":${source.generation}`
    const withPid = `${base},"pid":${source.pid}`
    made = [Buffer.from(base), Buffer.from(base + ','), Buffer.from(withPid), Buffer.from(withPid + ',')]
    fieldsOf.set(source, made)
  }
  let next = open + 1
  while (isSpace(buf[next])) next++
  return made[(hasPid ? 0 : 2) + (buf[next] === CLOSE ? 0 : 1)]
}

/** Any other line of a worker, as one line of the primary's log, with its newline. */
function outputEvent (text: string, source: LineSource, time: number): string {
  return JSON.stringify({
    level: source.stream === 'stderr' ? 40 : 30,
    time: new Date(time).toISOString(),
    event: 'worker.output',
    workerId: source.workerId,
    pid: source.pid,
    generation: source.generation,
    stream: source.stream,
    text,
  }) + '\n'
}

/** Per line of the batch being written: where its `{` is, and what goes after it (reused from batch to batch). */
const opens: number[] = []
const inserts: Buffer[] = []

/**
 * A batch of a worker's lines as the primary writes them in JSON mode, in one buffer. A
 * JSON object line keeps its bytes, copied once around the worker's fields (put first);
 * any other line becomes a worker.output event. A line makes no object of its own.
 */
export function jsonLines (batch: LineBatch, source: LineSource, time: number): Buffer {
  const { bufs, starts, ends } = batch
  // what each line becomes: its `{` and the fields put after it, or (not an object) its worker.output event
  let size = 0
  let pidBuf: Buffer | undefined
  let pidAt = 0
  for (let i = 0; i < batch.count; i++) {
    const buf = bufs[i]
    const start = starts[i]
    const end = ends[i]
    const open = objectOpen(buf, start, end)
    opens[i] = open
    if (open === -1) {
      inserts[i] = Buffer.from(outputEvent(buf.toString('utf8', start, end), source, time))
      size += inserts[i].length
      continue
    }
    // the next "pid": in this buffer, searched again only once a line starts past it
    if (buf !== pidBuf || pidAt < start) {
      pidBuf = buf
      pidAt = buf.indexOf(PID, start)
      if (pidAt === -1) pidAt = buf.length
    }
    inserts[i] = fieldsFor(source, buf, open, pidAt + PID.length <= end)
    size += end - start + inserts[i].length + 1
  }
  const out = Buffer.allocUnsafe(size)
  let at = 0
  for (let i = 0; i < batch.count; i++) {
    const buf = bufs[i]
    const open = opens[i]
    if (open === -1) {
      at += inserts[i].copy(out, at)
    } else {
      at += buf.copy(out, at, starts[i], open + 1)
      at += inserts[i].copy(out, at)
      at += buf.copy(out, at, open + 1, ends[i])
      out[at++] = 0x0a
    }
  }
  inserts.fill(undefined as unknown as Buffer, 0, batch.count)
  return out
}

/** A batch of one line, for jsonLine(). */
const single = new LineBatch()

/** One line as the primary writes it in JSON mode, with its newline (as jsonLines() writes each). */
export function jsonLine (line: Buffer, source: LineSource, time: number): Buffer {
  single.add(line, 0, line.length)
  const out = jsonLines(single, source, time)
  single.clear()
  return out
}

const NEWLINE = Buffer.from('\n')
const COLOURS = [36, 32, 33, 35, 34, 96, 92, 93, 95, 94]

/** The line as the primary writes it in pretty mode, as pieces: `w0 1234 | text`, coloured on a terminal. */
export function prettyLine (line: Buffer, source: LineSource, colour: boolean): Buffer[] {
  const name = `w${source.workerId} ${source.pid}${source.stream === 'stderr' ? '!' : ''}`
  const prefix = colour ? `\x1b[${source.stream === 'stderr' ? 31 : COLOURS[source.workerId % COLOURS.length]}m${name} |\x1b[0m ` : `${name} | `
  return [Buffer.from(prefix), line, NEWLINE]
}

/**
 * The primary's events (its JSON lines) as pretty mode writes them, one line each:
 * `[18:22:55.655] INFO (23033): worker.fork {"workerId":0,"generation":0}`.
 */
export function prettyEvents (colour: boolean): (line: string) => string {
  // pino-pretty only when asked for: it weighs ~10 MB in a primary that may run for months
  const pinoPretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty
  return pinoPretty.prettyFactory({ ignore: 'hostname', messageKey: 'event', colorize: colour, singleLine: true })
}
