// The primary's listening sockets, so that a new primary can take them over: every
// TCP socket this process binds is recorded (the round-robin and sticky listeners,
// the shared handles of `none`, the metrics port), and a socket handed over by the
// previous primary is used instead of a new bind when a listen asks for its address.
//
// Node's cluster binds in the primary through two internal seams, the same in Node
// 20 to 26: net.Server#_listen2 (round-robin, and any server of the primary's own)
// and net._createServerHandle (the handles that `none` shares with its workers).
// Both are wrapped once, here; nothing else in the package touches them. The wrap also
// keeps a reuseport bind from joining another program's sockets on a port.
import net from 'node:net'
import os from 'node:os'
import { UV_TCP_REUSEPORT, boundToPort } from '../common/reuseport.js'

/** A TCP handle (Node's TCP wrap), as net.Server and child_process.send know it. */
export interface TcpHandle {
  readonly fd: number
  close: () => void
}

/** A listening socket and the address it is bound to. */
export interface ListenSocket {
  /** '::', '0.0.0.0', '127.0.0.1', … */
  address: string
  port: number
  handle: TcpHandle
  /** bound with SO_REUSEPORT (schedulingPolicy 'reuseport') */
  reusePort: boolean
}

type Listen2 = (this: net.Server & { _handle: TcpHandle | null }, address: string | null, port: number, addressType: number, backlog: number, fd?: number, flags?: number) => void
type CreateServerHandle = (address: string | null, port: number, addressType: number, fd?: number, flags?: number) => TcpHandle | number

const recorded = new Set<ListenSocket>()
/** Where an inherited socket came from: the previous primary, or systemd's socket activation. */
export type SocketSource = 'upgrade' | 'systemd'
const inherited: Array<ListenSocket & { from: SocketSource }> = []
let installed = false
/** Node's own, before the wrap */
const createServerHandle = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle

/** The wildcard a listen without a host binds: Node tries '::' first, then '0.0.0.0'. */
const WILDCARDS = new Set(['::', '0.0.0.0'])

/**
 * Whether a listen on (host, port) is served by a socket bound to `socket`'s address:
 * the same port, and the same host (a wildcard for a wildcard); a listen without a host
 * (`listen(3000)`) takes the socket of its port whatever its address, as systemd's
 * ListenStream=127.0.0.1:3000 means: the operator chose where the port listens.
 */
export function servesListen (socket: { address: string, port: number }, host: string | null | undefined, port: number): boolean {
  if (port !== socket.port || port <= 0) return false
  if (host === null || host === undefined || host === '') return true
  return host === socket.address || (WILDCARDS.has(host) && WILDCARDS.has(socket.address))
}

/** Takes the inherited socket that serves a listen on (host, port), if there is one: a wildcard one first. */
function take (host: string | null | undefined, port: number): (ListenSocket & { from: SocketSource }) | undefined {
  const serving = inherited.filter((s) => servesListen(s, host, port))
  const socket = serving.find((s) => WILDCARDS.has(s.address)) ?? serving[0]
  if (socket) inherited.splice(inherited.indexOf(socket), 1)
  return socket
}

function record (address: string | null, port: number, handle: TcpHandle, reusePort: boolean): void {
  recorded.add({ address: address ?? '::', port, handle, reusePort })
}

/** Wraps Node's two binding seams, once per process. */
export function recordListenSockets (): void {
  if (installed) return
  installed = true
  const proto = net.Server.prototype as unknown as { _listen2: Listen2 }
  const listen2 = proto._listen2
  proto._listen2 = function (address, port, addressType, backlog, fd, flags) {
    if (!this._handle && !(typeof fd === 'number' && fd >= 0) && port > 0) {
      const socket = take(address, port)
      if (socket) this._handle = socket.handle
    }
    listen2.call(this, address, port, addressType, backlog, fd, flags)
    const handle = this._handle
    if (handle && port > 0) record(boundAddress(this) ?? address, boundPort(this) ?? port, handle, false)
  }
  const netInternal = net as unknown as { _createServerHandle: CreateServerHandle }
  const create = createServerHandle
  netInternal._createServerHandle = function (address, port, addressType, fd, flags) {
    if (!(typeof fd === 'number' && fd >= 0) && port > 0) {
      const socket = take(address, port)
      if (socket) {
        record(socket.address, port, socket.handle, socket.reusePort)
        return socket.handle
      }
    }
    if (((flags ?? 0) & UV_TCP_REUSEPORT) !== 0 && port > 0) {
      const taken = heldElsewhere(address, port, addressType)
      if (taken !== 0) return taken
    }
    const handle = create(address, port, addressType, fd, flags)
    if (typeof handle === 'object' && port > 0) record(address ?? '::', port, handle, ((flags ?? 0) & UV_TCP_REUSEPORT) !== 0)
    return handle
  }
}

/**
 * SO_REUSEPORT lets any process of the same user bind beside a socket that has it, and
 * the kernel then splits the port's connections between them: a second cluster (or an
 * old one left running) would take half of the traffic, silently. So the first
 * reuseport socket of a port this process holds none of is bound only where a socket
 * without the option could bind too: otherwise the bind fails with EADDRINUSE (libuv's
 * negative error code), as a plain listen would.
 */
function heldElsewhere (address: string | null, port: number, addressType: number): number {
  if (listenSockets().some((s) => s.port === port)) return 0
  const probe = createServerHandle(address, port, addressType) as TcpHandle & Parameters<typeof boundToPort>[0] | number
  if (typeof probe === 'number') return probe
  const free = boundToPort(probe, port)
  probe.close()
  return free ? 0 : -os.constants.errno.EADDRINUSE
}

function boundAddress (server: net.Server): string | undefined {
  const a = server.address()
  return a !== null && typeof a === 'object' ? a.address : undefined
}

function boundPort (server: net.Server): number | undefined {
  const a = server.address()
  return a !== null && typeof a === 'object' ? a.port : undefined
}

/** The sockets this process listens on now (closed ones are left out). */
export function listenSockets (): ListenSocket[] {
  for (const socket of recorded) if (socket.handle.fd < 0) recorded.delete(socket)
  return [...recorded]
}

/** Stops accepting on every recorded socket: its other holders (the new primary) accept all. */
export function closeListenSockets (): void {
  for (const socket of recorded) socket.handle.close()
  recorded.clear()
}

/** Sockets handed over by the previous primary, for the listens to come. */
export function inherit (sockets: ListenSocket[]): void {
  for (const socket of sockets) inherited.push({ ...socket, from: 'upgrade' })
}

/** The first file descriptor systemd passes (SD_LISTEN_FDS_START). */
const SD_LISTEN_FDS_START = 3

export interface SystemdSockets {
  /** the TCP sockets, now inherited by the listens to come, with their names */
  sockets: Array<{ address: string, port: number, name?: string }>
  /** passed descriptors that are not listening TCP sockets (a unix socket, say): left alone */
  skipped: Array<{ fd: number, name?: string, reason: string }>
}

/**
 * Socket activation: the sockets systemd passed (a .socket unit, or
 * systemd-socket-activate), when LISTEN_PID names this process. The variables are
 * removed, as sd_listen_fds(1) does, so that no worker takes them for its own.
 */
export function inheritFromSystemd (env: NodeJS.ProcessEnv = process.env): SystemdSockets {
  const found: SystemdSockets = { sockets: [], skipped: [] }
  const pid = Number(env.LISTEN_PID)
  const count = Number(env.LISTEN_FDS)
  const names = (env.LISTEN_FDNAMES ?? '').split(':')
  const ours = pid === process.pid
  if (ours) {
    delete env.LISTEN_PID
    delete env.LISTEN_FDS
    delete env.LISTEN_FDNAMES
  }
  if (!ours || !Number.isSafeInteger(count) || count <= 0) return found
  for (let i = 0; i < count; i++) {
    const fd = SD_LISTEN_FDS_START + i
    const name = names[i] || undefined
    const handle = createServerHandle(null, 0, -1, fd)
    if (typeof handle === 'number') {
      found.skipped.push({ fd, name, reason: `not a socket Node can listen on (${handle})` })
      continue
    }
    const bound: { address?: string, port?: number } = {}
    const err = (handle as unknown as { getsockname?: (out: object) => number }).getsockname?.(bound)
    if (err !== 0 || typeof bound.port !== 'number' || bound.address === undefined) {
      // a unix socket, say: the apps' listens are on TCP ports
      handle.close()
      found.skipped.push({ fd, name, reason: 'not a TCP socket' })
      continue
    }
    inherited.push({ address: bound.address, port: bound.port, handle, reusePort: false, from: 'systemd' })
    found.sockets.push({ address: bound.address, port: bound.port, ...(name ? { name } : {}) })
  }
  return found
}

/** The inherited sockets no listen has taken: closed, and returned to be reported. */
export function closeUnusedInherited (): Array<{ address: string, port: number, from: SocketSource }> {
  const unused = inherited.splice(0)
  for (const socket of unused) socket.handle.close()
  return unused.map(({ address, port, from }) => ({ address, port, from }))
}
