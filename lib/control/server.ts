// The primary's control socket: HTTP/1.1 with JSON bodies on an owner-only unix
// socket, so `cluster-run status` (or `curl --unix-socket`) can see and steer a
// running cluster. Never TCP. Commands go through the same handle calls as the
// signals: a reload from here is queued, ignored or aborted exactly like a SIGHUP.
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import type { ReloadOutcome } from '../common/lifecycle.js'
import type { ClusterStatus } from '../supervisor/status.js'
import { prepareDirectory, InsecureDirectoryError } from './directory.js'
import { MAX_SOCKET_PATH } from '../common/cluster-paths.js'
import { request, NotRunningError } from './client.js'
import { StartError } from '../common/errors.js'

/** What the socket steers: the supervisor. */
export interface Controlled {
  status: () => ClusterStatus
  reload: () => Promise<ReloadOutcome>
  scale: (workers: number) => void
  scaleBy: (delta: number) => void
  stop: (signal?: string) => Promise<number>
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

export interface ControlServer {
  readonly path: string
  /** Answers the callers waiting for the stop, closes the socket and removes its file. */
  close: (exitCode: number) => Promise<void>
}

/**
 * Opens the socket at `file`, refusing to run beside a live cluster of the same name.
 * `ownDirectory`: the directory is cluster-run's (the default one), created 0700 and
 * refused unless it is this user's and owner-only; otherwise it is one the config
 * chose, which must exist and be writable by nobody else.
 */
export async function openControlSocket (file: string, target: Controlled, ownDirectory: boolean): Promise<ControlServer> {
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
  await removeStale(file)

  const stopping = new Set<http.ServerResponse>()
  const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    void handle(req, res, target, stopping)
  })
  server.maxConnections = 64
  server.keepAliveTimeout = 1000
  // The socket file is created by bind() with the process's umask: owner-only from
  // its first instant, not chmod-ed afterwards.
  const umask = process.umask(0o177)
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(file, () => { server.off('error', reject); resolve() })
    })
  } catch (err) {
    throw new StartError(`cannot listen on the control socket ${file}: ${(err as Error).message}`, 73)
  } finally {
    process.umask(umask)
  }
  const inode = fs.statSync(file).ino
  server.unref() // the workers keep the primary alive, not the socket

  return {
    path: file,
    close: async (exitCode) => {
      for (const res of stopping) reply(res, 200, { exitCode })
      stopping.clear()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeIdleConnections()
      })
      // Only our own file: a primary started after us with the same name may own it now.
      try {
        if (fs.statSync(file).ino === inode) fs.unlinkSync(file)
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

async function handle (req: http.IncomingMessage, res: http.ServerResponse, target: Controlled, stopping: Set<http.ServerResponse>): Promise<void> {
  const route = `${req.method} ${new URL(req.url ?? '/', 'http://localhost').pathname}`
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
      stopping.add(res)
      res.once('close', () => stopping.delete(res))
      void target.stop('control')
      return
  }
  const known = { '/status': 'GET', '/reload': 'POST', '/scale': 'POST', '/stop': 'POST' } as Record<string, string>
  const pathname = route.slice(route.indexOf(' ') + 1)
  if (known[pathname]) {
    res.setHeader('Allow', known[pathname])
    return reply(res, 405, { error: `${req.method} is not allowed on ${pathname}; use ${known[pathname]}` })
  }
  return reply(res, 404, { error: `no such endpoint: ${pathname}; the endpoints are GET /status, POST /reload, POST /scale, POST /stop` })
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
