// Finds the app's servers without any change to the app: every net.Server that
// listens in this process (http, https, tls, plain net) is recorded here, with its
// connections and the requests in flight on each.
import net, { type Socket } from 'node:net'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { workerState } from './state.js'

/** How long an idle keep-alive connection may stay open once draining began. */
export const IDLE_GRACE_MS = 1000

const servers = new Set<net.Server>()
const connections = new Map<net.Server, Set<Socket>>()
const inflightBySocket = new WeakMap<Socket, number>()
const responsesInFlight = new Set<ServerResponse>()
const requestListeners = new Set<() => void>()

/** Called for every request of every http(s) server of this worker. */
export function onEveryRequest (fn: () => void): void {
  requestListeners.add(fn)
}

/** Record every server that listens from now on. Idempotent. */
export function trackServers (): void {
  const proto = net.Server.prototype as net.Server & { [patchedListen]?: true }
  if (proto[patchedListen]) return
  proto[patchedListen] = true
  const listen = proto.listen
  proto.listen = function (this: net.Server, ...args: unknown[]) {
    adopt(this)
    return (listen as (...a: unknown[]) => net.Server).apply(this, args)
  } as typeof listen
}
const patchedListen = Symbol.for('cluster-run.listen-patched')

function adopt (server: net.Server): void {
  if (servers.has(server)) return
  servers.add(server)
  const sockets = new Set<Socket>()
  connections.set(server, sockets)
  server.on('connection', (socket: Socket) => {
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
  })
  // http and https servers emit 'request'; on any other server the listener never runs.
  // (No instanceof https.Server: importing node:https costs every worker ~10 ms.)
  server.prependListener('request', countRequest)
}

function countRequest (req: IncomingMessage, res: ServerResponse): void {
  const state = workerState()
  state.requests++
  state.inflight++
  const socket = req.socket
  inflightBySocket.set(socket, (inflightBySocket.get(socket) ?? 0) + 1)
  responsesInFlight.add(res)
  // A response that starts while draining tells the client to go elsewhere next time.
  if (state.draining) res.setHeader('Connection', 'close')
  res.once('close', () => {
    state.inflight--
    responsesInFlight.delete(res)
    const left = (inflightBySocket.get(socket) ?? 1) - 1
    inflightBySocket.set(socket, left)
    if (state.draining && left === 0) closeWhenIdle(socket)
  })
  for (const fn of requestListeners) fn()
}

/**
 * Close a keep-alive socket that stays idle for IDLE_GRACE_MS. Closing it at once
 * (what http.Server#close does since Node 19) races the client's next request,
 * which may already be on the wire, and resets it.
 */
function closeWhenIdle (socket: Socket): void {
  if (socket.destroyed) return
  const timer = setTimeout(() => {
    if ((inflightBySocket.get(socket) ?? 0) === 0) socket.destroy()
  }, IDLE_GRACE_MS)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}

/**
 * Stop accepting on every server, let in-flight requests finish with
 * `Connection: close`, close idle connections after a grace; resolves when every
 * server has closed (all its connections ended).
 */
export function drainServers (): Promise<void> {
  for (const res of responsesInFlight) {
    if (!res.headersSent) res.setHeader('Connection', 'close')
  }
  const closing: Promise<void>[] = []
  for (const server of servers) {
    if (server.listening) {
      closing.push(new Promise((resolve) => {
        // net.Server#close, not http.Server#close: the latter also drops idle
        // keep-alive sockets at once (see closeWhenIdle).
        net.Server.prototype.close.call(server, () => resolve())
      }))
    }
    for (const socket of connections.get(server) ?? []) {
      if ((inflightBySocket.get(socket) ?? 0) === 0) closeWhenIdle(socket)
    }
  }
  return Promise.all(closing).then(() => undefined)
}
