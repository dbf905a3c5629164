// The worker's side of schedulingPolicy 'reuseport': the app's listen(port) waits for
// the socket the primary bound for this worker's slot (SO_REUSEPORT), then listens on
// it, with the app's backlog and callback. The server accepts its connections itself.
import net from 'node:net'
import type { ToPrimary, ToWorker } from '../protocol/messages.js'
import { addressKey, type TcpTarget } from './listen-target.js'

interface Pending { server: net.Server, target: TcpTarget, args: unknown[] }

const pending = new Map<number, Pending>()
let sequence = 0

/** Instead of the app's listen(): ask for the socket; the listen happens once it arrives. */
export function askForSlotSocket (server: net.Server, target: TcpTarget, args: unknown[], send: (m: ToPrimary) => void): void {
  const id = ++sequence
  pending.set(id, { server, target, args })
  send({ clusterRun: 'reuseport-listen', id, address: addressKey(target), port: target.port, host: target.host })
}

/** The slot's socket (the handle), or why there is none: the server then fails as its own listen() would. */
export function onSlotSocket (message: Extract<ToWorker, { clusterRun: 'reuseport-socket' }>, handle: unknown, send: (m: ToPrimary) => void): void {
  const asked = pending.get(message.id)
  pending.delete(message.id)
  const socket = handle as { close: () => void } | undefined
  if (!asked) {
    socket?.close()
    return
  }
  const { server, target, args } = asked
  if (message.error || !socket) {
    const error = message.error ?? { message: `listen EINVAL: no socket for ${addressKey(target)}`, code: 'EINVAL' }
    server.emit('error', Object.assign(new Error(error.message), { code: error.code, syscall: 'listen', address: target.host, port: target.port }))
    return
  }
  server.once('listening', () => {
    const bound = server.address()
    if (bound && typeof bound === 'object') send({ clusterRun: 'reuseport-listening', address: formatBound(bound) })
  })
  const callback = args.find((a): a is () => void => typeof a === 'function')
  server.listen(socket, target.backlog ?? 511, callback)
}

function formatBound ({ address, port }: net.AddressInfo): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`
}
