// How a worker's line is written out by the primary. Pure.
//
// JSON (the default, as the primary's own lines): a line that is a JSON object keeps its
// bytes, with the worker's slot and generation (and its pid, unless the line has one,
// as pino's do) put first among its fields, never escaped into a string; any other line
// becomes one line of the primary's log, `event: 'worker.output'`, with its text.
// Pretty: a short prefix naming the worker, coloured by slot on a terminal.

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

/** The line as the primary writes it in JSON mode, with its newline. */
export function jsonLine (line: Buffer, source: LineSource, time: number): Buffer {
  if (isJsonObject(line)) {
    const open = line.indexOf(OPEN)
    const rest = line.subarray(open + 1)
    const empty = rest.toString('latin1').trim() === '}'
    const fields = `"workerId":${source.workerId},"generation":${source.generation}${line.includes(PID) ? '' : `,"pid":${source.pid}`}${empty ? '' : ','}`
    return Buffer.concat([line.subarray(0, open + 1), Buffer.from(fields), rest, NEWLINE])
  }
  return Buffer.from(JSON.stringify({
    level: source.stream === 'stderr' ? 40 : 30,
    time: new Date(time).toISOString(),
    event: 'worker.output',
    workerId: source.workerId,
    pid: source.pid,
    generation: source.generation,
    stream: source.stream,
    text: line.toString('utf8'),
  }) + '\n')
}

const NEWLINE = Buffer.from('\n')
const COLOURS = [36, 32, 33, 35, 34, 96, 92, 93, 95, 94]

/** The line as the primary writes it in pretty mode: `w0 1234 | text`, coloured on a terminal. */
export function prettyLine (line: Buffer, source: LineSource, colour: boolean): Buffer {
  const name = `w${source.workerId} ${source.pid}${source.stream === 'stderr' ? '!' : ''}`
  const prefix = colour ? `\x1b[${source.stream === 'stderr' ? 31 : COLOURS[source.workerId % COLOURS.length]}m${name} |\x1b[0m ` : `${name} | `
  return Buffer.concat([Buffer.from(prefix), line, NEWLINE])
}
