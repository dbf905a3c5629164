// The worker's side of schedulingPolicy 'reuseport': the app's listen(port) waits for
// the socket the primary bound for this worker's slot (SO_REUSEPORT), then listens on
// it, with the app's backlog and callback. The server accepts its connections itself.
//
// While another slot has no worker (it crashed, or was killed as hung, and waits for
// its restart), the primary has this worker accept on that slot's socket too, so that
// the connections the kernel queues there are served instead of waiting.
import net from 'node:net'
import type { ToPrimary, ToWorker } from '../protocol/messages.js'
import { addressKey, type TcpTarget } from './listen-target.js'
import { leaveUntracked } from './servers.js'
import { workerState } from './state.js'
import { hostPort } from '../common/address.js'

interface Pending { server: net.Server, target: TcpTarget, args: unknown[] }

const pending = new Map<number, Pending>()
let sequence = 0
/** the app's servers, by the address they asked for, with their backlog */
const servers = new Map<string, { server: net.Server, backlog: number }>()
/** by slot: the acceptors on the sockets of slots this worker stands in for */
const adopted = new Map<number, net.Server[]>()

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
  // a worker that drains meanwhile has no use for it: the listen never completes
  if (!asked || workerState().draining) {
    socket?.close()
    return
  }
  const { server, target, args } = asked
  if (message.error || !socket) {
    const error = message.error ?? { message: `listen EINVAL: no socket for ${addressKey(target)}`, code: 'EINVAL' }
    server.emit('error', Object.assign(new Error(error.message), { code: error.code, syscall: 'listen', address: target.host, port: target.port }))
    return
  }
  const backlog = target.backlog ?? 511
  server.once('listening', () => {
    const bound = server.address()
    servers.set(addressKey(target), { server, backlog })
    if (bound && typeof bound === 'object') send({ clusterRun: 'reuseport-listening', address: hostPort(bound.address, bound.port), asked: addressKey(target) })
  })
  const callback = args.find((a): a is () => void => typeof a === 'function')
  server.listen(socket, backlog, callback)
}

/** Accept on another slot's socket for the app's server at that address, until released or draining. */
export function onAdopt ({ slot, address }: Extract<ToWorker, { clusterRun: 'reuseport-adopt' }>, handle: unknown): void {
  const socket = handle as { close: () => void } | undefined
  const own = servers.get(address)
  if (!socket) return
  if (!own || workerState().draining) {
    socket.close()
    return
  }
  const { server, backlog } = own
  // the app's server's options, as its own accepted connections get them
  const { allowHalfOpen, pauseOnConnect, noDelay, keepAlive, keepAliveInitialDelay } = server as net.Server & net.ServerOpts
  const acceptor = new net.Server({ allowHalfOpen, pauseOnConnect, noDelay, keepAlive, keepAliveInitialDelay })
  leaveUntracked(acceptor)
  acceptor.on('connection', (connection) => server.emit('connection', connection))
  acceptor.on('error', () => acceptor.close())
  // (a listen() on a listening socket sets its backlog again: the app's)
  acceptor.listen(socket, backlog)
  adopted.set(slot, [...adopted.get(slot) ?? [], acceptor])
}

/** The slot has its own worker again; or this worker drains (every slot). The sockets live on in the primary. */
export function onRelease ({ slot }: { slot?: number }): void {
  for (const [s, acceptors] of adopted) {
    if (slot !== undefined && s !== slot) continue
    for (const acceptor of acceptors) acceptor.close()
    adopted.delete(s)
  }
}
