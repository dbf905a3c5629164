// Finds the app's servers without any change to the app: every net.Server that
// listens in this process (http, https, tls, plain net) is recorded here, with its
// connections. The request path only counts: which requests are in flight is read
// from what Node already tracks (a socket's current response), and per-response
// bookkeeping starts only once a drain has begun.
import { errorMonitor } from 'node:events'
import net, { type Socket } from 'node:net'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { workerState } from './state.js'
import { upgraded, trackUpgrades, refuseUpgrades, goAway } from './upgrades.js'
import { holdRequests } from './abandoned.js'
import { hostPort } from '../common/address.js'

/** How long an idle keep-alive connection may stay open once draining began. */
const IDLE_GRACE_MS = 1000

const state = workerState()
const servers = new Set<net.Server>()
const connections = new Map<net.Server, Set<Socket>>()
let onRequest: () => void = () => {}
/** called whenever a connection closes, while a drain waits for the last one */
const closeWaiters = new Set<() => void>()

/** Called for every request of every http(s) server of this worker (the heartbeat's check). */
export function onEveryRequest (fn: () => void): void {
  onRequest = fn
}

export interface ListenFailure { address: string, code: string, message: string }
let onListenFailed: (failure: ListenFailure) => void = () => {}

/** Called when a server of this worker fails to listen, whether or not the app handles the error. */
export function onListenFailure (fn: (failure: ListenFailure) => void): void {
  onListenFailed = fn
}

/** The response a socket is writing now: Node sets it for the request in progress, and clears it when that response is done. */
function currentResponse (socket: Socket): ServerResponse | null | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage
}

/** Requests in flight: the sockets with a response in progress. Read at each heartbeat, not counted per request. */
export function inflightRequests (): number {
  let n = 0
  for (const sockets of connections.values()) {
    for (const socket of sockets) if (currentResponse(socket)) n++
  }
  return n
}

/**
 * Changes a listen() call's arguments (sticky sessions), leaves them (undefined), or
 * takes the call over ('deferred': it listens later, itself, as reuseport does).
 */
export type ListenRewrite = (server: net.Server, args: unknown[]) => unknown[] | 'deferred' | undefined

const untracked = new WeakSet<net.Server>()

/** A server of cluster-run's own in the worker (reuseport's acceptors): not one of the app's. */
export function leaveUntracked (server: net.Server): void {
  untracked.add(server)
}

/** Record every server that listens from now on. Idempotent. */
export function trackServers (rewrite?: ListenRewrite): void {
  const proto = net.Server.prototype as net.Server & { [patchedListen]?: true }
  if (proto[patchedListen]) return
  proto[patchedListen] = true
  const listen = proto.listen
  proto.listen = function (this: net.Server, ...args: unknown[]) {
    if (untracked.has(this)) return (listen as (...a: unknown[]) => net.Server).apply(this, args)
    adopt(this)
    const rewritten = rewrite?.(this, args)
    if (rewritten === 'deferred') return this
    return (listen as (...a: unknown[]) => net.Server).apply(this, rewritten ?? args)
  } as typeof listen
}
const patchedListen = Symbol.for('cluster-run.listen-patched')

function adopt (server: net.Server): void {
  if (servers.has(server)) return
  servers.add(server)
  const sockets = new Set<Socket>()
  connections.set(server, sockets)
  server.on('connection', (socket: Socket) => {
    state.accepted++
    sockets.add(socket)
    socket.once('close', () => {
      sockets.delete(socket)
      for (const waiter of closeWaiters) waiter()
    })
  })
  // http and https servers emit 'request'; on any other server the listener never runs.
  // (No instanceof https.Server: importing node:https costs every worker ~10 ms.)
  server.prependListener('request', countRequest)
  holdRequests(server)
  trackUpgrades(server)
  // Seen without being a listener: an app with no 'error' listener still throws, one
  // that swallows the error (Express 5's app.listen hands it to the callback) keeps
  // running, and the primary learns of it either way.
  const monitored: NodeJS.EventEmitter = server
  monitored.on(errorMonitor, (err: NodeJS.ErrnoException & { address?: string, port?: number }) => {
    if (server.listening || (err.syscall !== 'listen' && err.syscall !== 'bind')) return
    const address = err.port === undefined ? String(err.address) : hostPort(err.address ?? '::', err.port)
    onListenFailed({ address, code: err.code ?? 'UNKNOWN', message: err.message })
  })
}

/** Open connections of every server of this worker. */
export function openConnections (): number {
  let n = 0
  for (const sockets of connections.values()) n += sockets.size
  return n
}

function countRequest (req: IncomingMessage, res: ServerResponse): void {
  state.requests++
  if (state.draining) closeAfter(req.socket, res)
  onRequest()
}

/** While draining: the response tells the client to go elsewhere next time, and its socket closes once idle. */
function closeAfter (socket: Socket, res: ServerResponse): void {
  if (!res.headersSent) res.setHeader('Connection', 'close')
  res.once('close', () => closeWhenIdle(socket))
}

/**
 * Close a keep-alive socket that stays idle for IDLE_GRACE_MS. Closing it at once
 * (what http.Server#close does since Node 19) races the client's next request,
 * which may already be on the wire, and resets it.
 */
function closeWhenIdle (socket: Socket): void {
  if (socket.destroyed || currentResponse(socket)) return
  const timer = setTimeout(() => {
    if (!currentResponse(socket)) socket.destroy()
  }, IDLE_GRACE_MS)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}

/**
 * When a drain leaves the last connections at `deadlineMs`, cluster-run ends them itself
 * this much earlier, so it can count them and tell WebSocket clients "going away"
 * before the primary's SIGKILL.
 */
function sweepMargin (deadlineMs: number): number {
  return Math.min(2000, Math.max(200, Math.floor(deadlineMs / 5)))
}

export interface DrainOptions {
  /** when the primary kills this worker, ms from now */
  deadlineMs: number
  /** told, at the deadline, how many connections were still open (and are being ended) */
  onSwept: (connections: number) => void
  /** the app registered onDrain(): its upgraded connections are its own to close */
  appClosesUpgrades: boolean
}

/**
 * Stop accepting on every server, let in-flight requests finish with
 * `Connection: close`, close idle connections after a grace, refuse new upgrades,
 * leave upgraded connections to the app (or, if it registered nothing, tell them
 * "going away" after the grace); end what is still open just before the deadline.
 * Resolves once every connection is closed.
 */
export function drainServers ({ deadlineMs, appClosesUpgrades, onSwept }: DrainOptions): Promise<void> {
  for (const server of servers) {
    refuseUpgrades(server)
    // net.Server#close, not http.Server#close: the latter also drops idle
    // keep-alive sockets at once (see closeWhenIdle).
    if (server.listening) net.Server.prototype.close.call(server)
    for (const socket of connections.get(server) ?? []) {
      if (upgraded.has(socket)) continue
      const res = currentResponse(socket)
      if (res) closeAfter(socket, res)
      else closeWhenIdle(socket)
    }
  }
  if (!appClosesUpgrades) {
    setTimeout(() => { for (const socket of upgraded.keys()) goAway(socket, IDLE_GRACE_MS) }, IDLE_GRACE_MS).unref()
  }
  let destroyed = 0
  const margin = sweepMargin(deadlineMs)
  const sweep = setTimeout(() => {
    for (const sockets of connections.values()) {
      for (const socket of sockets) {
        destroyed++
        // a WebSocket client gets half the margin to answer the close frame
        if (upgraded.has(socket)) goAway(socket, margin / 2)
        else socket.destroy()
      }
    }
    onSwept(destroyed)
  }, Math.max(0, deadlineMs - margin))
  sweep.unref()
  return new Promise((resolve) => {
    const check = (): void => {
      if (openConnections() > 0) return
      closeWaiters.delete(check)
      clearTimeout(sweep)
      resolve()
    }
    closeWaiters.add(check)
    check()
  })
}
