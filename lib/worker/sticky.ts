// The worker's side of sticky sessions: the app's listen(port) is kept unchanged but
// made private (an abstract unix socket nobody is told about), the primary is asked
// to listen on the port instead, and the connections it hands over arrive as the
// server's own 'connection' events, with the bytes the primary read put back.
import net, { type Socket } from 'node:net'
import type { ToPrimary, ToWorker } from '../protocol/messages.js'

const servers = new Map<string, net.Server>()
let sequence = 0

export interface TcpTarget { port: number, host?: string, backlog?: number }

/** The port, host and backlog of a TCP listen() call; undefined for a pipe, a handle, or port 0. */
export function tcpTarget (args: unknown[]): TcpTarget | undefined {
  const [first, second, third] = args
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    const port = Number(first)
    const host = typeof second === 'string' ? second : undefined
    const backlog = typeof second === 'number' ? second : typeof third === 'number' ? third : undefined
    return port > 0 ? { port, host, backlog } : undefined
  }
  if (first && typeof first === 'object') {
    const o = first as Record<string, unknown>
    if ('path' in o || 'fd' in o || 'handle' in o || '_handle' in o || o.port === undefined) return undefined
    const port = Number(o.port)
    return port > 0 ? { port, host: typeof o.host === 'string' ? o.host : undefined, backlog: typeof o.backlog === 'number' ? o.backlog : undefined } : undefined
  }
  return undefined
}

function addressKey ({ port, host }: TcpTarget): string {
  return `${host ?? ''}:${port}`
}

/**
 * The arguments for the real listen(): a private abstract socket of this worker, the
 * app's callback kept. Once listening, the primary is asked to accept for it.
 */
export function privateListen (server: net.Server, target: TcpTarget, args: unknown[], send: (m: ToPrimary) => void): unknown[] {
  const address = addressKey(target)
  servers.set(address, server)
  const callback = args.find((a) => typeof a === 'function')
  // what the app asked for, not the private socket
  const family = target.host?.includes(':') || target.host === undefined ? 'IPv6' : 'IPv4'
  server.address = () => ({ address: target.host ?? '::', family, port: target.port })
  server.once('listening', () => send({ clusterRun: 'sticky-listen', address, port: target.port, host: target.host, backlog: target.backlog }))
  return [{ path: `\0cluster-run-${process.pid}-${++sequence}`, exclusive: true, backlog: target.backlog }, ...(callback ? [callback] : [])]
}

/** The primary listens for the server at `address` now, or could not: then the server fails as its own listen() would. */
export function onStickyListening (message: Extract<ToWorker, { clusterRun: 'sticky-listening' }>): void {
  const server = servers.get(message.address)
  if (!server || !message.error) return
  const [host, port] = [message.address.slice(0, message.address.lastIndexOf(':')), Number(message.address.slice(message.address.lastIndexOf(':') + 1))]
  server.close()
  server.emit('error', Object.assign(new Error(message.error.message), { code: message.error.code, syscall: 'listen', address: host || undefined, port }))
}

/** A connection the primary accepted for the server at `address`, with the bytes it read. */
export function onStickyConnection (message: Extract<ToWorker, { clusterRun: 'sticky-conn' }>, handle: unknown, draining: boolean): void {
  const socket = handle as Socket | undefined
  const server = servers.get(message.address)
  if (!socket) return
  if (!server || draining) {
    socket.destroy()
    return
  }
  if (message.head) socket.unshift(Buffer.from(message.head, 'base64'))
  server.emit('connection', socket)
  socket.resume()
}
