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

export type OutputStream = 'stdout' | 'stderr'

export interface LineSource {
  workerId: number
  pid: number
  generation: number
  stream: OutputStream
}

const OPEN = 0x7b // {
const CLOSE = 0x7d // }

/** Whether the line looks like one JSON object: `{` first and `}` last (spaces aside). Not parsed: the primary reads every line. */
export function isJsonObject (line: Buffer): boolean {
  let start = 0
  let end = line.length - 1
  while (start <= end && isSpace(line[start])) start++
  while (end >= start && isSpace(line[end])) end--
  return end > start && line[start] === OPEN && line[end] === CLOSE
}

const isSpace = (byte: number): boolean => byte === 0x20 || byte === 0x09 || byte === 0x0d

const PID = Buffer.from('"pid":')

/** The fields put first in a worker's JSON line, made once per worker: with and without its pid, each with and without a comma after. */
const fieldsOf = new WeakMap<LineSource, Buffer[]>()
function fieldsFor (source: LineSource): Buffer[] {
  let made = fieldsOf.get(source)
  if (!made) {
    const base = `"workerId":${source.workerId},"generation":${source.generation}`
    const withPid = `${base},"pid":${source.pid}`
    made = [Buffer.from(base), Buffer.from(base + ','), Buffer.from(withPid), Buffer.from(withPid + ',')]
    fieldsOf.set(source, made)
  }
  return made
}

/**
 * The line as the primary writes it in JSON mode, as pieces to write one after the
 * other (the line's own bytes are not copied), its newline last. `source` should be one
 * object per worker and stream: what is made of it once is kept with it.
 */
export function jsonLine (line: Buffer, source: LineSource, time: number): Buffer[] {
  if (isJsonObject(line)) {
    const open = line.indexOf(OPEN)
    let next = open + 1
    while (isSpace(line[next])) next++
    const empty = line[next] === CLOSE
    const fields = fieldsFor(source)[(line.includes(PID) ? 0 : 2) + (empty ? 0 : 1)]
    return [line.subarray(0, open + 1), fields, line.subarray(open + 1), NEWLINE]
  }
  return [Buffer.from(JSON.stringify({
    level: source.stream === 'stderr' ? 40 : 30,
    time: new Date(time).toISOString(),
    event: 'worker.output',
    workerId: source.workerId,
    pid: source.pid,
    generation: source.generation,
    stream: source.stream,
    text: line.toString('utf8'),
  }) + '\n')]
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
