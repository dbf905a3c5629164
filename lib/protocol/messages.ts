// The IPC messages between the primary and its workers. Every message carries a
// `clusterRun` key so that the app's own process.send/on('message') traffic is left alone.

export interface HeartbeatStats {
  rssBytes: number
  heapUsedBytes: number
  /** event-loop delay (p99 since the previous beat), ms */
  eventLoopDelayMs: number
  requests: number
  inflight: number
  /** requests the middleware refused (overload or draining), when the app uses it */
  refused: number
  /** requests whose client had closed its connection before their handler ran: not run */
  abandoned: number
  /** open connections of the app's servers (keep-alive and upgraded ones included) */
  connections: number
  /** connections the app's servers have accepted since the worker started */
  accepted: number
  /** CPU time the process has used since it started (user and system), µs */
  cpuMicros: number
}

export type ToWorker =
  /** drain now; the primary kills the worker `deadlineMs` from now */
  | { clusterRun: 'drain', deadlineMs: number }
  /** the shutdown delay: keep serving, but report not ready */
  | { clusterRun: 'unready' }
  /** a scrape asks for the app's metrics (registered with exposeMetrics()) */
  | { clusterRun: 'metrics', id: number }
  /** sticky: the primary listens for the server at `address` now, or could not */
  | { clusterRun: 'sticky-listening', address: string, error?: { message: string, code?: string } }
  /** sticky: a connection for the server at `address` (the socket rides as the handle), with the bytes already read */
  | { clusterRun: 'sticky-conn', address: string, head?: string }
  /** reuseport: the slot's socket for listen request `id` (it rides as the handle), or why there is none */
  | { clusterRun: 'reuseport-socket', id: number, error?: { message: string, code?: string } }
  /** reuseport: accept on this socket of `slot`, whose worker is gone, for the server at `address` too, until released */
  | { clusterRun: 'reuseport-adopt', slot: number, address: string }
  /** reuseport: `slot` has a worker again: stop accepting on its sockets */
  | { clusterRun: 'reuseport-release', slot: number }

export type ToPrimary =
  | { clusterRun: 'ready' }
  | { clusterRun: 'draining' }
  | ({ clusterRun: 'heartbeat' } & HeartbeatStats)
  | { clusterRun: 'metrics', id: number, metrics: unknown[] }
  /** sticky: a server of the app listens (privately); the primary is to accept for it */
  | { clusterRun: 'sticky-listen', address: string, port: number, host?: string, backlog?: number }
  /** reuseport: a server of the app asks for its slot's socket for `address` (host:port as asked) */
  | { clusterRun: 'reuseport-listen', id: number, address: string, port: number, host?: string }
  /** reuseport: the server listens on its slot's socket, bound to `address` */
  | { clusterRun: 'reuseport-listening', address: string, asked: string }
  /** a server of the app could not listen (EADDRINUSE, EACCES, ...), whatever the app did with the error */
  | { clusterRun: 'listen-failed', address: string, code: string, message: string }
  /** the worker is exiting (sent from its 'exit' event): what it still had open */
  | { clusterRun: 'exiting', inflight: number, connections: number }
  /** connections still open at the drain's deadline, which the worker ended itself */
  | { clusterRun: 'destroyed', connections: number }

export function isProtocolMessage<T extends ToPrimary | ToWorker> (m: unknown): m is T {
  return m !== null && typeof m === 'object' && typeof (m as { clusterRun?: unknown }).clusterRun === 'string'
}

/** A handler for each kind of message: a table that misses one does not compile. */
export type Handlers<M extends { clusterRun: string }, Extra extends unknown[] = []> = {
  [K in M['clusterRun']]: (message: Extract<M, { clusterRun: K }>, ...extra: Extra) => void
}

/** Hands a message to its handler; one of a kind this side does not know is ignored. */
export function dispatch<M extends { clusterRun: string }, Extra extends unknown[]> (handlers: Handlers<M, Extra>, message: M, ...extra: Extra): void {
  const handler = (handlers as unknown as Record<string, ((message: M, ...extra: Extra) => void) | undefined>)[message.clusterRun]
  handler?.(message, ...extra)
}
