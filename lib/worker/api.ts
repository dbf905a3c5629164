// What an app may call from inside a worker. Cheap to import (no config or logging
// machinery), and harmless outside cluster-run: under plain `node app.js` ready()
// does nothing and onShutdown() hooks never run.
import { workerState, type ShutdownHook, type MetricsSource } from './state.js'
import { readLaunch } from '../protocol/launch.js'

/**
 * Tell the primary this worker is ready for traffic. Needed with
 * `readiness: 'message'` (like PM2's wait_ready); harmless otherwise.
 */
export function ready (): void {
  if (workerState().supervised && process.connected) process.send?.({ clusterRun: 'ready' })
}

/** Register cleanup to run once the worker's servers have drained, before it exits. */
export function onShutdown (hook: ShutdownHook): void {
  workerState().shutdownHooks.push(hook)
}

/** true once this worker has started draining (shutdown, reload, scale-down, recycle). */
export function isDraining (): boolean {
  return workerState().draining
}

/** This worker's slot (0..N-1), stable across restarts; undefined outside cluster-run. */
export function workerId (): number | undefined {
  return readLaunch()?.workerId
}

/**
 * Let the primary's /metrics include this registry (a prom-client Registry, e.g. its
 * default `register`): at each scrape the primary asks every worker and aggregates
 * the answers with prom-client's cluster aggregation (summed unless a metric sets its
 * `aggregator`). One line in the app; nothing happens outside cluster-run.
 */
export function exposeMetrics (registry: MetricsSource): void {
  const { metrics } = workerState()
  if (!metrics.includes(registry)) metrics.push(registry)
}

/**
 * Register a callback for the start of a drain (reload, scale-down, recycle,
 * shutdown): the moment to close long-lived connections (WebSockets, server-sent
 * events) so that their clients reconnect to another worker. Once an app registered
 * one, its upgraded connections are its own to close until the drain's deadline.
 */
export function onDrain (hook: () => unknown): void {
  workerState().drainHooks.push(hook)
}

/** The part of a `ws` WebSocket the helper uses. */
interface WebSocketLike {
  close: (code?: number, reason?: string) => void
  terminate: () => void
  send: (...args: any[]) => void
  on: (event: 'message', listener: () => void) => unknown
}

export interface DrainWebSocketsOptions {
  /** the close code (default 1001, "going away": the client may reconnect at once) */
  code?: number
  reason?: string
  /** clients still open this long after the close are terminated (default 5000 ms) */
  graceMs?: number
}

/**
 * One line for a `ws` WebSocketServer: on drain, close every client with 1001 and a
 * reason, terminate those still open after a grace. A client whose last message has
 * not been answered yet is closed right after the answer (request/response protocols
 * lose no reply), or at the grace.
 */
export function drainWebSockets (wss: { clients: Iterable<WebSocketLike>, on: (event: 'connection', listener: (ws: WebSocketLike) => void) => unknown }, options: DrainWebSocketsOptions = {}): void {
  const { code = 1001, reason = 'server going away', graceMs = 5000 } = options
  const unanswered = new WeakMap<WebSocketLike, number>()
  let draining = false
  wss.on('connection', (ws) => {
    ws.on('message', () => unanswered.set(ws, (unanswered.get(ws) ?? 0) + 1))
    const send = ws.send
    ws.send = function (this: WebSocketLike, ...args: unknown[]) {
      send.apply(this, args)
      const left = Math.max(0, (unanswered.get(ws) ?? 0) - 1)
      unanswered.set(ws, left)
      if (draining && left === 0) ws.close(code, reason)
    }
  })
  onDrain(() => {
    draining = true
    for (const ws of wss.clients) if ((unanswered.get(ws) ?? 0) === 0) ws.close(code, reason)
    setTimeout(() => { for (const ws of wss.clients) ws.terminate() }, graceMs).unref()
  })
}

/**
 * One line for a socket.io Server: on drain, close every client's connection (its
 * transport), so that the clients reconnect, to another worker, by themselves.
 */
export function drainSocketIo (io: { engine: { clients: Map<string, { close: () => void }> | Record<string, { close: () => void }> } }): void {
  onDrain(() => {
    const clients = io.engine.clients
    for (const client of clients instanceof Map ? clients.values() : Object.values(clients)) client.close()
  })
}
