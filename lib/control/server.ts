// The primary's control socket: HTTP/1.1 with JSON bodies on an owner-only unix
// socket, so `cluster-run status` (or `curl --unix-socket`) can see and steer a
// running cluster. Never TCP. Commands go through the same handle calls as the
// signals: a reload from here is queued, ignored or aborted exactly like a SIGHUP.
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import type { ReloadOutcome, UpgradeOutcome } from '../common/lifecycle.js'
import type { ClusterStatus } from '../supervisor/status.js'
import { prepareDirectory, InsecureDirectoryError } from './directory.js'
import { MAX_SOCKET_PATH } from '../common/cluster-paths.js'
import { request, NotRunningError } from './client.js'
import { StartError } from '../common/errors.js'
import { matches, type Entry, type Filter, type History } from '../logs/history.js'
import { jsonLine } from '../logs/format.js'

/** What `cluster-run logs` reads: the history of log lines (logs/sink.ts). */
export interface LogsSource {
  history: Pick<History, 'last' | 'follow'>
  /** reopens the log files (for a logrotate that moved them); throws when one cannot be */
  reopen: () => void
  /** lines followers were too slow to take */
  missed: number
}

/** The most lines one request may ask for. */
const MAX_LINES = 100_000

/** What the socket steers: the supervisor. */
export interface Controlled {
  status: () => ClusterStatus
  reload: () => Promise<ReloadOutcome>
  scale: (workers: number) => void
  scaleBy: (delta: number) => void
  stop: (signal?: string) => Promise<number>
  /** replaces the primary itself (`node`: the binary of the new one, an absolute path) */
  upgrade: (options: { node?: string }) => Promise<UpgradeOutcome>
  readonly desiredWorkers: number
}

const MAX_BODY_BYTES = 64 * 1024

/** {"workers": n} (n >= 1) or {"delta": n}, nothing else. (Checked by hand: the primary does without zod.) */
function parseScale (body: unknown): { workers: number } | { delta: number } | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined
  const keys = Object.keys(body)
  const value = (body as Record<string, unknown>)[keys[0]]
  if (keys.length !== 1 || !Number.isSafeInteger(value)) return undefined
  if (keys[0] === 'workers' && (value as number) >= 1) return { workers: value as number }
  if (keys[0] === 'delta') return { delta: value as number }
  return undefined
}

/** {"node": "/abs/path"} or nothing. */
function parseUpgrade (body: unknown): { node?: string } | undefined {
  if (body === undefined) return {}
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return undefined
  const keys = Object.keys(body)
  const node = (body as { node?: unknown }).node
  if (keys.length === 0) return {}
  if (keys.length !== 1 || typeof node !== 'string' || !path.isAbsolute(node) || node.length > 4096) return undefined
  return { node }
}

export interface ControlServer {
  readonly path: string
  /** Answers the callers waiting for the stop, closes the socket and removes its file. */
  close: (exitCode: number) => Promise<void>
  /**
   * An upgrade's new primary, whose socket was bound beside the path: takes the path
   * over (one rename: a client finds the old socket or the new one, never none).
   */
  takeOver: () => void
  /**
   * An upgrade's old primary, whose path the new one has taken: close() then leaves the
   * socket alone (closing it would remove the path, which is the new primary's now).
   */
  handOver: () => void
}

/** Where an upgrade's new primary binds its control socket until it takes the path over: not a `.sock`, so `ls` passes it by. */
function upgradePath (file: string): string {
  return path.join(path.dirname(file), `.upgrade-${process.pid}`)
}

/**
 * Opens the socket at `file`, refusing to run beside a live cluster of the same name.
 * `ownDirectory`: the directory is cluster-run's (the default one), created 0700 and
 * refused unless it is this user's and owner-only; otherwise it is one the config
 * chose, which must exist and be writable by nobody else.
 */
export async function openControlSocket (file: string, target: Controlled, ownDirectory: boolean, logs?: LogsSource, successor = false): Promise<ControlServer> {
  if (Buffer.byteLength(file) > MAX_SOCKET_PATH) {
    throw new StartError(`the control socket path is too long for a unix socket (${Buffer.byteLength(file)} bytes, at most ${MAX_SOCKET_PATH}): ${file}; set controlSocket or CLUSTER_RUN_HOME to a shorter path`, 78)
  }
  const dir = path.dirname(file)
  try {
    if (ownDirectory) prepareDirectory(dir)
    else checkChosenDirectory(dir)
  } catch (err) {
    if (err instanceof InsecureDirectoryError) throw new StartError(`refusing to open the control socket: ${err.message}`, 77)
    throw new StartError(`cannot open the control socket in ${dir}: ${(err as Error).message}`, 73)
  }
  // An upgrade's new primary binds beside the old primary's live socket.
  const bound = successor ? upgradePath(file) : file
  if (successor) await removeStale(bound)
  else await removeStale(file)

  /** the callers waiting for the stop, and what an upgrade's caller is told then */
  const stopping = new Map<http.ServerResponse, UpgradeOutcome | undefined>()
  /** each follower, and how to tell it the cluster stopped */
  const following = new Map<http.ServerResponse, Stopped>()
  // requestTimeout 0: a follower's request lasts as long as it follows (headers still time out)
  const server = http.createServer({ requestTimeout: 0, headersTimeout: 5_000 }, (req, res) => {
    void handle(req, res, target, stopping, { logs, following })
  })
  server.maxConnections = 64
  server.keepAliveTimeout = 1000
  // The socket file is created by bind() with the process's umask: owner-only from
  // its first instant, not chmod-ed afterwards.
  const umask = process.umask(0o177)
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(bound, () => { server.off('error', reject); resolve() })
    })
  } catch (err) {
    throw new StartError(`cannot listen on the control socket ${bound}: ${(err as Error).message}`, 73)
  } finally {
    process.umask(umask)
  }
  const inode = fs.statSync(bound).ino
  let current = bound
  let handedOver = false
  server.unref() // the workers keep the primary alive, not the socket

  return {
    get path () { return current },
    takeOver: () => {
      if (current === file) return
      fs.renameSync(bound, file)
      current = file
    },
    handOver: () => { handedOver = true },
    close: async (exitCode) => {
      for (const [res, upgrade] of stopping) reply(res, 200, { ...upgrade, exitCode })
      stopping.clear()
      // followers are told the cluster has stopped (or moved to a new primary), and their requests end
      for (const stopped of following.values()) stopped(exitCode, handedOver)
      following.clear()
      // The path is the new primary's: libuv would unlink it on close. The socket goes with the process.
      if (handedOver) {
        server.closeIdleConnections()
        return
      }
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
      // Only our own file: a primary started after us with the same name may own it now.
      // (libuv removes the path it bound; this one may be the path taken over.)
      try {
        if (fs.statSync(current).ino === inode) fs.unlinkSync(current)
      } catch {}
    },
  }
}

/** A directory others may read (/run/app, say): nobody else may write to it, or they could replace the socket. */
function checkChosenDirectory (dir: string): void {
  const stat = fs.statSync(dir)
  if (!stat.isDirectory()) throw new InsecureDirectoryError(`${dir} is not a directory`)
  const uid = process.getuid?.() ?? -1
  if (uid >= 0 && stat.uid !== uid && stat.uid !== 0) throw new InsecureDirectoryError(`${dir} belongs to uid ${stat.uid}, not to this user (uid ${uid}) or root`)
  if ((stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0) {
    throw new InsecureDirectoryError(`${dir} is writable by other users (mode ${(stat.mode & 0o777).toString(8)}), who could replace the socket`)
  }
}

/** A live socket means the name runs already; a dead one (its primary was killed) is replaced. */
async function removeStale (file: string): Promise<void> {
  let stat: fs.Stats
  try {
    stat = fs.lstatSync(file)
  } catch {
    return
  }
  if (!stat.isSocket()) throw new StartError(`${file} exists and is not a socket; refusing to replace it`, 73)
  try {
    const { json } = await request(file, 'GET', '/status', undefined, 2000)
    const pid = (json as { pid?: number })?.pid
    throw new StartError(`a cluster named "${path.basename(file, '.sock')}" is already running (pid ${pid ?? 'unknown'}, socket ${file})`, 73)
  } catch (err) {
    if (err instanceof StartError) throw err
    if (!(err instanceof NotRunningError)) {
      throw new StartError(`${file} belongs to a process that does not answer (${(err as Error).message}); remove it if no cluster runs`, 73)
    }
    fs.unlinkSync(file)
  }
}

async function handle (req: http.IncomingMessage, res: http.ServerResponse, target: Controlled, stopping: Map<http.ServerResponse, UpgradeOutcome | undefined>, logging: { logs?: LogsSource, following: Map<http.ServerResponse, Stopped> }): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost')
  const route = `${req.method} ${url.pathname}`
  let body: unknown
  try {
    body = await readJson(req)
  } catch (err) {
    const { status, message } = err as { status: number, message: string }
    return reply(res, status ?? 400, { error: message }, true)
  }
  switch (route) {
    case 'GET /status':
      return reply(res, 200, target.status())
    case 'POST /reload': {
      const outcome = await target.reload()
      const { lastReload, generation } = target.status()
      const reason = outcome === 'aborted' ? lastReload?.reason : undefined
      return reply(res, 200, { outcome, generation, ...(reason ? { reason } : {}) })
    }
    case 'POST /scale': {
      const scale = parseScale(body)
      if (!scale) return reply(res, 400, { error: 'invalid scale request: expected {"workers": n} with n >= 1, or {"delta": n}' })
      const from = target.desiredWorkers
      if ('workers' in scale) target.scale(scale.workers)
      else target.scaleBy(scale.delta)
      return reply(res, 200, { from, to: target.desiredWorkers })
    }
    case 'POST /stop':
      // Answered when the primary has stopped, with its exit code (see close()).
      stopping.set(res, undefined)
      res.once('close', () => stopping.delete(res))
      void target.stop('control')
      return
    case 'POST /upgrade': {
      const options = parseUpgrade(body)
      if (!options) return reply(res, 400, { error: 'invalid upgrade request: expected nothing, or {"node": "/absolute/path/to/node"}' })
      const outcome = await target.upgrade(options)
      if (outcome.outcome !== 'complete') return reply(res, 200, outcome)
      // Answered once this primary has drained its workers and stopped, with its exit code.
      stopping.set(res, outcome)
      res.once('close', () => stopping.delete(res))
      return
    }
    case 'GET /logs': {
      if (!logging.logs) return reply(res, 404, { error: 'this cluster keeps no log history' })
      const query = parseLogsQuery(url.searchParams)
      if (typeof query === 'string') return reply(res, 400, { error: query })
      return streamLogs(res, logging.logs, query, logging.following)
    }
    case 'POST /logs/reopen':
      if (!logging.logs) return reply(res, 404, { error: 'this cluster keeps no log history' })
      try {
        logging.logs.reopen()
      } catch (err) {
        return reply(res, 500, { error: `the log files were not all reopened: ${(err as Error).message}` })
      }
      return reply(res, 200, { reopened: true })
  }
  const known = { '/status': 'GET', '/reload': 'POST', '/scale': 'POST', '/stop': 'POST', '/upgrade': 'POST', '/logs': 'GET', '/logs/reopen': 'POST' } as Record<string, string>
  const pathname = route.slice(route.indexOf(' ') + 1)
  if (known[pathname]) {
    res.setHeader('Allow', known[pathname])
    return reply(res, 405, { error: `${req.method} is not allowed on ${pathname}; use ${known[pathname]}` })
  }
  return reply(res, 404, { error: `no such endpoint: ${pathname}; the endpoints are GET /status, POST /reload, POST /scale, POST /stop, POST /upgrade, GET /logs, POST /logs/reopen` })
}

interface LogsQuery {
  lines: number
  follow: boolean
  filter: Filter
  /** 'entries': each line with its source, as JSON; 'log': each line as the primary's JSON log writes it */
  format: 'entries' | 'log'
}

/** ?lines=n&follow=1&worker=n&stream=stdout|stderr&events=1|only&format=entries|log: the query checked, or what is wrong with it. */
function parseLogsQuery (params: URLSearchParams): LogsQuery | string {
  const known = new Set(['lines', 'follow', 'worker', 'stream', 'events', 'format'])
  for (const key of params.keys()) if (!known.has(key)) return `unknown parameter "${key}"; the parameters are lines, follow, worker, stream, events, format`
  const lines = Number(params.get('lines') ?? 50)
  if (!Number.isSafeInteger(lines) || lines < 0 || lines > MAX_LINES) return `lines: expected a whole number from 0 to ${MAX_LINES}`
  const worker = params.get('worker')
  if (worker !== null && !/^\d+$/.test(worker)) return 'worker: expected a worker id (0, 1, …)'
  const stream = params.get('stream')
  if (stream !== null && stream !== 'stdout' && stream !== 'stderr') return 'stream: expected stdout or stderr'
  const format = params.get('format') ?? 'entries'
  if (format !== 'entries' && format !== 'log') return 'format: expected entries or log'
  const flag = (name: string): boolean => params.get(name) === '1' || params.get(name) === 'true'
  return {
    lines,
    format,
    follow: flag('follow'),
    filter: {
      workerId: worker === null ? undefined : Number(worker),
      stream: stream ?? undefined,
      events: flag('events') || params.get('events') === 'only',
      workers: params.get('events') !== 'only',
    },
  }
}

/**
 * One log entry as a line of the answer, made now (its bytes are not kept): its source
 * and text, or the event's JSON; or (format 'log') the line as the primary's JSON log
 * writes it, which a follower then only has to copy out.
 */
function answerLine (entry: Entry, format: LogsQuery['format']): Buffer {
  const { seq, time, source } = entry
  if (format === 'log') return source ? jsonLine(entry.bytes, source, time) : Buffer.concat([entry.bytes, NEWLINE])
  return Buffer.from(JSON.stringify(source
    ? { seq, time, ...source, line: entry.bytes.toString('utf8') }
    : { seq, time, event: entry.bytes.toString('utf8') }) + '\n')
}

const NEWLINE = Buffer.from('\n')

/** What may wait in the primary for a follower that reads slowly before its lines are skipped. */
const FOLLOWER_BACKLOG_BYTES = 2 * 1024 * 1024

/**
 * The last lines, then (following) each new one as it is written, one JSON line each. A
 * follower that reads too slowly is not waited for: the lines it cannot take are
 * skipped, and once it has caught up it is told how many it missed. Too slow means more
 * than FOLLOWER_BACKLOG_BYTES waiting for it (besides what its socket holds): one that
 * stalls for a moment misses nothing. Its new lines are written together once the turn
 * of the event loop that added them is over: one write for a read of a worker's pipe
 * (tens of lines), not one per line.
 */
/** Tells a follower the cluster stopped: its primary exited, or (upgraded) a new primary took over. */
type Stopped = (exitCode: number, upgraded: boolean) => void

function streamLogs (res: http.ServerResponse, logs: LogsSource, { lines, follow, filter, format }: LogsQuery, following: Map<http.ServerResponse, Stopped>): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' })
  const last = logs.history.last(lines, filter)
  if (last.length) res.write(Buffer.concat(last.map((entry) => answerLine(entry, format))))
  if (!follow) {
    res.end()
    return
  }
  let missed = 0
  let full = false
  let batch: Buffer[] = []
  const flush = (): void => {
    const pieces = batch
    batch = []
    if (!pieces.length || res.writableEnded) return
    res.write(Buffer.concat(pieces))
    if (res.writableLength > FOLLOWER_BACKLOG_BYTES) {
      full = true
      res.once('drain', () => {
        full = false
        if (!res.writableEnded) tellMissed()
      })
    }
  }
  const tellMissed = (): void => {
    if (missed > 0) res.write(JSON.stringify({ missed }) + '\n')
    missed = 0
  }
  following.set(res, (exitCode, upgraded) => {
    stop()
    flush()
    tellMissed()
    res.end(JSON.stringify(upgraded ? { upgraded: true } : { stopped: true, exitCode }) + '\n')
  })
  const stop = logs.history.follow((entry) => {
    if (!matches(entry, filter)) return
    if (full) {
      missed++
      logs.missed++
      return
    }
    if (!batch.length) setImmediate(flush)
    batch.push(answerLine(entry, format))
  })
  res.once('close', () => {
    stop()
    following.delete(res)
  })
}

/** The request's JSON body (undefined when empty), at most MAX_BODY_BYTES. */
function readJson (req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0)
    if (declared > MAX_BODY_BYTES) return reject(Object.assign(new Error(`request body too large (at most ${MAX_BODY_BYTES} bytes)`), { status: 413 }))
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data')
        req.resume()
        reject(Object.assign(new Error(`request body too large (at most ${MAX_BODY_BYTES} bytes)`), { status: 413 }))
      } else {
        chunks.push(chunk)
      }
    })
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8').trim()
      if (!text) return resolve(undefined)
      try {
        resolve(JSON.parse(text))
      } catch (err) {
        reject(Object.assign(new Error(`malformed JSON body: ${(err as Error).message}`), { status: 400 }))
      }
    })
    req.on('error', reject)
  })
}

function reply (res: http.ServerResponse, status: number, body: unknown, close = false): void {
  if (res.headersSent || res.destroyed) return
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...(close ? { connection: 'close' } : {}),
  })
  res.end(text)
}
