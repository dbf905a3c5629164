// The dashboard: a page on the metrics listener that charts the last 15 minutes of
// every worker, with the cluster's events on the same time axis and the live log tail.
// The primary samples each worker's latest heartbeat once a second into fixed rings
// (rings.ts) and keeps its events (timeline.ts); a page gets all of it once, then one
// server-sent event a second, so an open page costs a write a second and a closed one
// nothing but the sampling. Loaded only when metrics are on.
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import zlib from 'node:zlib'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { ClusterStatus } from '../supervisor/status.js'
import type { AnyEvent } from '../supervisor/events.js'
import type { Entry, History } from '../logs/history.js'
import { nearestPackageJson } from '../common/package-json.js'
import { Rings, FIGURES, readingsOf } from './rings.js'
import { Timeline } from './timeline.js'
import { bearerMatches } from './token.js'

export { dashboardToken } from './token.js'

export interface DashboardSources {
  status: () => ClusterStatus
  /** the workers' lines (the log tail) */
  history: Pick<History, 'last' | 'follow'>
  /** calls `listener` with each of the cluster's events; returns how to stop */
  events: (listener: (event: AnyEvent) => void) => () => void
  /** the actions, as the control socket's commands run them */
  reload: () => Promise<string>
  scaleBy: (delta: number) => void
  recycle: (workerId: number) => boolean
}

export interface DashboardOptions {
  /** the workers' log lines on the page: only where the listener is loopback */
  logs: boolean
  /** how much the charts and the timeline keep */
  windowMs: number
  sampleMs: number
  /** the token the actions need, or why the page is read-only */
  actions: { token: string } | { readOnly: string }
}

/** Pages open at once; more are refused (each is a response held open). */
const MAX_PAGES = 32
/** A page this far behind is too slow to follow: it is closed and reconnects. */
const MAX_BUFFERED = 4 * 1024 * 1024
/** the largest action request body (its JSON is a few bytes) */
const MAX_BODY = 1024
/** log lines a page gets when it opens, and the longest line it is sent */
const LOG_LINES = 200
const LINE_CHARS = 2000

interface Asset { type: string, body: Buffer, gzip: Buffer }

export class Dashboard {
  readonly #sources: DashboardSources
  readonly #options: DashboardOptions
  readonly #rings: Rings
  readonly #timeline: Timeline
  readonly #pages = new Set<http.ServerResponse>()
  readonly #assets = new Map<string, Asset>()
  #sampler?: NodeJS.Timeout
  #unfollow?: () => void
  #unlisten?: () => void

  constructor (sources: DashboardSources, options: DashboardOptions) {
    this.#sources = sources
    this.#options = options
    this.#rings = new Rings(Math.ceil(options.windowMs / options.sampleMs))
    this.#timeline = new Timeline(options.windowMs, 2000)
  }

  start (): void {
    this.#sampler = setInterval(() => this.#sample(), this.#options.sampleMs).unref()
    this.#unlisten = this.#sources.events((event) => {
      const mark = this.#timeline.add(Date.now(), event)
      if (mark) this.#broadcast('mark', mark)
    })
  }

  close (): void {
    clearInterval(this.#sampler)
    this.#unfollow?.()
    this.#unfollow = undefined
    this.#unlisten?.()
    for (const page of this.#pages) page.end()
    this.#pages.clear()
  }

  /** Answers a request under /dashboard; false for any other path. */
  handle (req: http.IncomingMessage, res: http.ServerResponse, pathname: string): boolean {
    const action = ACTIONS.find((a) => `/dashboard/${a}` === pathname)
    if (action) {
      if (req.method !== 'POST') reply(res, 405, { error: `${req.method} does not change anything here; POST with the token` }, { allow: 'POST' })
      else void this.#act(req, res, action).catch((err: Error) => reply(res, 500, { error: err.message }))
      return true
    }
    const file = FILES[pathname]
    if (file === undefined && pathname !== '/dashboard/stream') return false
    if (req.method !== 'GET' && req.method !== 'HEAD') reply(res, 405, { error: `${req.method} is not allowed; use GET` }, { allow: 'GET, HEAD' })
    else if (file === undefined) this.#open(req, res)
    else this.#serve(req, res, file)
    return true
  }

  /**
   * An action, only with the token in an Authorization header: a form or an image of
   * another site can send neither that header nor a JSON body, and a script of another
   * origin cannot send them without a preflight, which is refused (no CORS here).
   */
  async #act (req: http.IncomingMessage, res: http.ServerResponse, action: typeof ACTIONS[number]): Promise<void> {
    const { actions } = this.#options
    if ('readOnly' in actions) return reply(res, 403, { error: `the dashboard is read-only: ${actions.readOnly}` })
    if (!bearerMatches(req.headers.authorization, actions.token)) return reply(res, 403, { error: 'an action needs the token: Authorization: Bearer <the token file beside the control socket>' })
    const origin = req.headers.origin
    if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`) return reply(res, 403, { error: `a request from ${origin} is refused` })
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) return reply(res, 415, { error: 'send a JSON body (content-type: application/json)' })
    const body = await readBody(req)
    if (body === undefined) return reply(res, 413, { error: `the body is over ${MAX_BODY} bytes` })
    let args: Record<string, unknown>
    try {
      const parsed: unknown = JSON.parse(body || '{}')
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object')
      args = parsed as Record<string, unknown>
    } catch {
      return reply(res, 400, { error: 'the body is not a JSON object' })
    }
    switch (action) {
      case 'reload':
        return reply(res, 200, { outcome: await this.#sources.reload() })
      case 'scale': {
        if (args.delta !== 1 && args.delta !== -1) return reply(res, 400, { error: 'delta: expected 1 or -1' })
        this.#sources.scaleBy(args.delta)
        return reply(res, 202, { delta: args.delta })
      }
      case 'recycle': {
        const { workerId } = args
        if (!Number.isSafeInteger(workerId) || (workerId as number) < 0) return reply(res, 400, { error: 'workerId: expected a slot number' })
        if (!this.#sources.recycle(workerId as number)) return reply(res, 409, { error: `worker ${String(workerId)} has no ready process to recycle` })
        return reply(res, 202, { workerId })
      }
    }
  }

  #serve (req: http.IncomingMessage, res: http.ServerResponse, name: string): void {
    const asset = this.#asset(name)
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))
    const body = gzip ? asset.gzip : asset.body
    res.writeHead(200, {
      'content-type': asset.type,
      'content-length': body.length,
      'cache-control': 'no-cache',
      vary: 'accept-encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      ...SECURITY_HEADERS,
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  #asset (name: string): Asset {
    let asset = this.#assets.get(name)
    if (!asset) {
      const body = fs.readFileSync(assetPath(name))
      asset = { type: TYPES[path.extname(name)], body, gzip: zlib.gzipSync(body) }
      this.#assets.set(name, asset)
    }
    return asset
  }

  #open (req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.#pages.size >= MAX_PAGES) return reply(res, 503, { error: `${MAX_PAGES} dashboard pages are open already` }, { 'retry-after': '10' })
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', ...SECURITY_HEADERS })
    if (req.method === 'HEAD') {
      res.end()
      return
    }
    req.socket.setNoDelay(true)
    const status = this.#sources.status()
    const logs = this.#options.logs
      ? this.#sources.history.last(LOG_LINES, { events: false }).map(logLine)
      : null
    // a page that loses the stream tries again after a second (a reload, an upgrade)
    res.write('retry: 1000\n')
    res.write(frame('snapshot', {
      cluster: { name: status.name, pid: status.pid, node: status.node, schedulingPolicy: status.schedulingPolicy, startedAt: status.startedAt },
      figures: FIGURES,
      actions: 'readOnly' in this.#options.actions ? { enabled: false, reason: this.#options.actions.readOnly } : { enabled: true },
      series: this.#rings.series(),
      marks: this.#timeline.since(Date.now()),
      logs,
    }))
    this.#pages.add(res)
    // the log's lines are followed only while a page shows them: the history makes an
    // entry for each line only when someone follows
    if (this.#options.logs) this.#unfollow ??= this.#sources.history.follow((entry) => this.#onLine(entry))
    res.on('close', () => {
      this.#pages.delete(res)
      if (this.#pages.size) return
      this.#unfollow?.()
      this.#unfollow = undefined
    })
  }

  #sample (): void {
    const status = this.#sources.status()
    if (status.state === 'stopped') return
    const tick = this.#rings.record(Date.now(), { ready: status.workers.ready, desired: status.workers.desired }, readingsOf(status))
    this.#broadcast('tick', tick)
  }

  /** A worker's line goes to the open pages; the primary's own (its events) come by `events`. */
  #onLine (entry: Entry): void {
    if (entry.source) this.#broadcast('log', logLine(entry))
  }

  #broadcast (event: string, data: unknown): void {
    if (!this.#pages.size) return
    const text = frame(event, data)
    for (const page of this.#pages) {
      if (page.writableLength > MAX_BUFFERED) {
        page.destroy()
        continue
      }
      page.write(text)
    }
  }
}

function logLine (entry: Entry): { time: number, workerId: number | null, pid: number | null, stream: string | null, text: string } {
  const text = entry.bytes.toString('utf8')
  return {
    time: entry.time,
    workerId: entry.source?.workerId ?? null,
    pid: entry.source?.pid ?? null,
    stream: entry.source?.stream ?? null,
    text: text.length > LINE_CHARS ? `${text.slice(0, LINE_CHARS)}…` : text,
  }
}

/** One server-sent event: JSON has no raw newline, so its data is one line. */
function frame (event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

const ACTIONS = ['reload', 'scale', 'recycle'] as const

/** The page's files by path. */
const FILES: Record<string, string | undefined> = {
  '/dashboard': 'index.html',
  '/dashboard/': 'index.html',
  '/dashboard/app.js': 'app.js',
  '/dashboard/app.css': 'app.css',
  '/dashboard/uplot.js': 'uplot.js',
  '/dashboard/uplot.css': 'uplot.css',
}

function reply (res: http.ServerResponse, status: number, body: object, headers: http.OutgoingHttpHeaders = {}): void {
  if (res.headersSent) return
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers })
  res.end(text)
}

/** The request's body as text, or undefined once it is over MAX_BODY (the rest is not read). */
async function readBody (req: http.IncomingMessage): Promise<string | undefined> {
  let size = 0
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY) return undefined
    chunks.push(chunk)
  }
  return Buffer.concat(chunks).toString('utf8')
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
}

/** The page loads nothing from elsewhere and runs no inline script; no other site may frame it. */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

/** The page's files ship in the package's assets/dashboard/; uPlot's, in its own package. */
function assetPath (name: string): string {
  const root = path.dirname(nearestPackageJson(path.dirname(fileURLToPath(import.meta.url)))!.file)
  if (name === 'uplot.js' || name === 'uplot.css') {
    const require = createRequire(path.join(root, 'package.json'))
    return require.resolve(name === 'uplot.js' ? 'uplot/dist/uPlot.iife.min.js' : 'uplot/dist/uPlot.min.css')
  }
  return path.join(root, 'assets', 'dashboard', name)
}
