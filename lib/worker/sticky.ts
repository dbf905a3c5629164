// The worker's side of sticky sessions: the app's listen(port) is kept unchanged but
// made private (an abstract unix socket nobody is told about), the primary is asked
// to listen on the port instead, and the connections it hands over arrive as the
// server's own 'connection' events, with the bytes the primary read put back.
import net, { type Socket } from 'node:net'
import type { ToPrimary, ToWorker } from '../protocol/messages.js'
import { addressKey, type TcpTarget } from './listen-target.js'

const servers = new Map<string, net.Server>()
let sequence = 0

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
