// The primary's own HTTP server for Prometheus, probes and the dashboard: GET /metrics,
// /healthz, /readyz, /dashboard, on a port of its own, never through a worker. Loaded
// only when `metrics` is set, with prom-client.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ClusterStatus } from '../supervisor/status.js'
import { StartError } from '../common/errors.js'
import { hostPort } from '../common/address.js'
import { exposition, primaryRegistry } from './exposition.js'
import { readiness } from './health.js'
import type { Dashboard, DashboardSources } from '../dashboard/dashboard.js'

export interface Scraped {
  status: () => ClusterStatus
  collectAppMetrics: (timeoutMs: number) => Promise<{ metrics: unknown[][], missing: number }>
}

export interface MetricsOptions {
  host: string
  port: number
  timeoutMs: number
  minReadyWorkers: number
  /** the dashboard at /dashboard, fed from the status and the log history */
  dashboard: (DashboardSources & { tokenFile: string | null, actions?: boolean }) | null
}

export interface MetricsServer {
  /** http://host:port */
  url: string
  /** the dashboard's URL, and the file of the token its actions need, or why it is read-only */
  dashboard: { url: string, tokenFile?: string, readOnly?: string } | null
  close: () => Promise<void>
}

export async function openMetricsServer (options: MetricsOptions, target: Scraped): Promise<MetricsServer> {
  const primary = primaryRegistry()
  let dashboard: Dashboard | undefined
  let readOnly: string | undefined
  if (options.dashboard) {
    const { Dashboard, dashboardToken } = await import('../dashboard/dashboard.js')
    const { tokenFile, actions = isLoopback(options.host) } = options.dashboard
    readOnly = !tokenFile
      ? 'there is no control socket (controlSocket: false), so no token file'
      : !actions
          ? `metrics.host ${options.host} is not loopback: set metrics.actions: true to allow actions with the token over it`
          : undefined
    dashboard = new Dashboard(options.dashboard, {
      // the workers' log lines only where nobody but this machine's users reaches the page
      logs: isLoopback(options.host),
      windowMs: 15 * 60_000,
      sampleMs: 1000,
      actions: readOnly === undefined ? { token: dashboardToken(tokenFile!) } : { readOnly },
    })
  }
  const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    void handle(req, res).catch((err: Error) => send(res, 500, 'application/json', JSON.stringify({ error: err.message })))
  })
  server.maxConnections = 256

  async function handle (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname
    if (dashboard && path === '/') {
      res.writeHead(302, { location: '/dashboard', 'content-length': 0 })
      res.end()
      return
    }
    if (dashboard?.handle(req, res, path)) return
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      return send(res, 405, 'application/json', JSON.stringify({ error: `${req.method} is not allowed; use GET` }))
    }
    switch (path) {
      case '/metrics': {
        const started = process.hrtime.bigint()
        const status = target.status()
        const { metrics, missing } = await target.collectAppMetrics(options.timeoutMs)
        const durationSeconds = Number(process.hrtime.bigint() - started) / 1e9
        const { contentType, body } = await exposition({ status, appMetrics: metrics, missing, durationSeconds }, primary)
        return send(res, 200, contentType, body)
      }
      case '/healthz':
        // Answering at all is the proof: the primary's event loop turns.
        return send(res, 200, 'application/json', JSON.stringify({ status: 'ok' }))
      case '/readyz': {
        const verdict = readiness(target.status(), options.minReadyWorkers)
        return send(res, verdict.ready ? 200 : 503, 'application/json', JSON.stringify({ status: verdict.ready ? 'ready' : 'not ready', ...verdict }))
      }
    }
    return send(res, 404, 'application/json', JSON.stringify({ error: `no such path: ${path}; there are /metrics, /healthz and /readyz${dashboard ? ' and /dashboard' : ''}` }))
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const where = `${options.host}:${options.port}`
      reject(new StartError(err.code === 'EADDRINUSE'
        ? `the metrics port ${where} is in use; choose another metrics.port (--metrics-port)`
        : `cannot listen for metrics on ${where}: ${err.message}`, 73))
    })
    server.listen(options.port, options.host, () => resolve())
  })
  server.unref()
  dashboard?.start()
  const { address, port } = server.address() as AddressInfo
  return {
    url: `http://${hostPort(address, port)}`,
    dashboard: dashboard
      ? { url: `http://${hostPort(address, port)}/dashboard`, ...(readOnly ? { readOnly } : { tokenFile: options.dashboard!.tokenFile! }) }
      : null,
    close: () => new Promise<void>((resolve) => {
      dashboard?.close()
      server.close(() => resolve())
      server.closeAllConnections()
    }),
  }
}

function send (res: http.ServerResponse, status: number, contentType: string, body: string): void {
  if (res.headersSent) return
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

/** Reachable only from this machine. */
function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}
