// `cluster-run logs [name]`: the last lines of a running cluster (its workers' output,
// and with --events the primary's own events, in the order they were written), from
// its control socket; -f follows until Ctrl-C or the cluster stops. Written out with
// backpressure: into a slow pipe (`| less`) everything arrives, and the command ends
// only once its output is flushed.
import http from 'node:http'
import { parseArgs } from 'node:util'
import { UsageError } from '../common/errors.js'
import { usageOf } from '../common/issues.js'
import { prettyEvents, prettyLine, type LineSource } from '../logs/format.js'

const LOGS_OPTIONS = {
  lines: { type: 'string', short: 'n' },
  follow: { type: 'boolean', short: 'f' },
  worker: { type: 'string' },
  stdout: { type: 'boolean' },
  stderr: { type: 'boolean' },
  events: { type: 'boolean' },
  reopen: { type: 'boolean' },
  json: { type: 'boolean' },
  socket: { type: 'string' },
  timeout: { type: 'string' },
} as const

export interface LogsInvocation {
  name?: string
  socket?: string
  reopen: boolean
  json: boolean
  query: URLSearchParams
  follow: boolean
}

export function parseLogs (args: string[]): LogsInvocation {
  let parsed
  try {
    parsed = parseArgs({ args, allowPositionals: true, strict: true, options: LOGS_OPTIONS })
  } catch (err) {
    throw usageOf(err, LOGS_OPTIONS, 'logs: ')
  }
  const { values, positionals } = parsed
  if (positionals.length > 1) throw new UsageError(`logs takes at most one name (given: ${positionals.join(' ')})`)
  const lines = values.lines ?? '50'
  if (!/^\d+$/.test(lines)) throw new UsageError(`logs: -n/--lines expects a number of lines (given: ${JSON.stringify(lines)})`)
  if (values.worker !== undefined && !/^\d+$/.test(values.worker)) throw new UsageError(`logs: --worker expects a worker id, 0, 1, … (given: ${JSON.stringify(values.worker)})`)
  if (values.stdout && values.stderr) throw new UsageError('logs: --stdout and --stderr together are both streams: give neither')
  const query = new URLSearchParams({ lines })
  if (values.follow) query.set('follow', '1')
  if (values.worker !== undefined) query.set('worker', values.worker)
  if (values.stdout) query.set('stream', 'stdout')
  if (values.stderr) query.set('stream', 'stderr')
  if (values.events) query.set('events', '1')
  // JSON: the cluster sends the lines as they are printed, and they are copied out as they come
  if (values.json) query.set('format', 'log')
  return { name: positionals[0], socket: values.socket, reopen: values.reopen === true, json: values.json === true, query, follow: values.follow === true }
}

type Envelope =
  | ({ seq: number, time: number, line: string } & LineSource)
  | { seq: number, time: number, event: string }
  | { missed: number }
  | { stopped: true, exitCode: number }
  | { upgraded: true }

/** The last line of a follow when a new primary took the cluster over (cluster-run upgrade). */
const UPGRADED = JSON.stringify({ upgraded: true }) + '\n'

/** The new primary's lines a follower asks for when it moves to it: what it wrote during the handover. */
const HANDOVER_LINES = '1000'

/** The primary's events as the primary writes them in pretty mode (made at the first). */
let prettyEvent: ((line: string) => string) | undefined

/** An answer line (format 'entries') as this command prints it for a person, with its newline. */
function render (envelope: Envelope, colour: boolean): string {
  if ('missed' in envelope) return `… ${envelope.missed} lines missed: this command read them too slowly\n`
  if ('stopped' in envelope) return `(the cluster stopped, exit code ${envelope.exitCode})\n`
  if ('upgraded' in envelope) return ''
  if ('event' in envelope) {
    prettyEvent ??= prettyEvents(colour)
    return prettyEvent(envelope.event)
  }
  const { seq: _s, time: _t, line, ...source } = envelope
  return Buffer.concat(prettyLine(Buffer.from(line), source, colour)).toString('utf8')
}

/**
 * Prints the answer of GET /logs as it comes; resolves with the exit code. A follower
 * whose cluster was upgraded goes on with the new primary, at the same path.
 */
export async function followLogs (socketPath: string, invocation: LogsInvocation, out: NodeJS.WriteStream): Promise<number> {
  let result = await followOnce(socketPath, invocation, out)
  while (result === 'upgraded') {
    const query = new URLSearchParams(invocation.query)
    query.set('lines', HANDOVER_LINES)
    result = await followOnce(socketPath, { ...invocation, query }, out)
  }
  return result
}

function followOnce (socketPath: string, { query, json }: LogsInvocation, out: NodeJS.WriteStream): Promise<number | 'upgraded'> {
  return new Promise((resolve, reject) => {
    const colour = out.isTTY === true
    let done = false
    let upgraded = false
    const finish = (code: number): void => {
      if (done) return
      done = true
      process.off('SIGINT', onSigint)
      // only once everything written has left, for a slow reader of a pipe
      out.write('', () => resolve(upgraded ? 'upgraded' : code))
    }
    const onSigint = (): void => { req.destroy(); finish(0) }
    process.once('SIGINT', onSigint)
    // a reader that went away (`| head`): nothing more to print, and no error for it
    out.once('error', () => { req.destroy(); finish(0) })
    const req = http.get({ socketPath, path: `/logs?${query}`, agent: false, headers: { host: 'localhost' } }, (res) => {
      if (res.statusCode !== 200) {
        let text = ''
        res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
        res.on('end', () => reject(new Error(`the cluster refused the request (${res.statusCode}): ${(JSON.parse(text || '{}') as { error?: string }).error}`)))
        return
      }
      const print = (text: string | Buffer): void => {
        if (text.length && !out.write(text)) {
          res.pause()
          out.once('drain', () => res.resume())
        }
      }
      if (json) {
        // whole lines only: the last one, which may say the cluster was upgraded, can come in two reads
        let pending: Buffer = Buffer.alloc(0)
        res.on('data', (chunk: Buffer) => {
          const data = pending.length ? Buffer.concat([pending, chunk]) : chunk
          const end = data.lastIndexOf(0x0a) + 1
          pending = data.subarray(end)
          let whole = data.subarray(0, end)
          if (whole.length >= UPGRADED.length && whole.toString('utf8', whole.length - UPGRADED.length) === UPGRADED) {
            upgraded = true
            whole = whole.subarray(0, whole.length - UPGRADED.length)
          }
          print(whole)
        })
        res.on('end', () => print(pending))
      } else {
        let pending = ''
        res.setEncoding('utf8').on('data', (chunk: string) => {
          pending += chunk
          const lines = pending.split('\n')
          pending = lines.pop()!
          let text = ''
          for (const line of lines) {
            if (!line) continue
            const envelope = JSON.parse(line) as Envelope
            if ('upgraded' in envelope) upgraded = true
            text += render(envelope, colour)
          }
          print(text)
        })
      }
      res.on('end', () => finish(0))
      res.on('error', () => finish(0))
    })
    req.on('error', (err) => { if (!done) reject(err) })
  })
}
