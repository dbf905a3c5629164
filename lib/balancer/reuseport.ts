// schedulingPolicy 'reuseport': one listening socket per slot and address, bound by
// the primary with SO_REUSEPORT and handed to the slot's worker, which accepts on it
// itself. The kernel spreads new connections across a port's sockets by a hash of
// each connection's addresses, one accept queue per socket, with no hop through
// the primary.
//
// The trap of SO_REUSEPORT is that a listener that closes resets the connections
// still waiting in its queue. Here the socket belongs to the slot, not to the
// process: the primary keeps a copy of every one (never accepting on it), so a
// worker that drains, is recycled, hangs or crashes closes only its own copy, and
// what waits in the queue is accepted by its successor; until that one listens, a
// worker of another slot stands in and accepts on the socket too. A scale-down closes
// the removed slots' sockets only where the kernel moves a closing socket's queue to
// the port's other sockets (net.ipv4.tcp_migrate_req=1); elsewhere they stay open,
// each served by a remaining worker, until the cluster scales up again. Only the
// cluster's stop closes every socket.
import dns from 'node:dns/promises'
import net, { isIP } from 'node:net'
import util from 'node:util'
import { UV_TCP_REUSEPORT, boundToPort } from '../common/reuseport.js'

/** A TCP handle (Node's TCP wrap), which child_process.send() hands over as a file descriptor. */
export interface SocketHandle {
  readonly fd: number
  close: () => void
  getsockname: (out: { address?: string, port?: number }) => number
}

type CreateServerHandle = (address: string | null, port: number, addressType?: number, fd?: number, flags?: number) => SocketHandle | number

export interface ListenTarget { port: number, host?: string }

/** What the primary tells a worker, after SlotSockets.tend(). */
export type SocketStep =
  | { do: 'adopt', member: number, slot: number, address: string, socket: Promise<SocketHandle> }
  | { do: 'release', member: number, slot: number }

/** What tend() reads of the cluster. */
export interface ClusterView {
  /** slots 0..wanted-1 are wished for */
  wanted: number
  /** the kernel moves a closing socket's queue (net.ipv4.tcp_migrate_req=1) */
  migrates: boolean
  /** ready workers, which may stand in for a slot without one */
  ready: number[]
  /** members whose heartbeats are overdue (a blocked event loop): they accept nothing, so they count as absent */
  stalled: number[]
  /** the generation wished for, and whether every slot has a ready worker of it (no reload under way) */
  generation: number
  settled: boolean
}

export class SlotSockets {
  /** by slot, then by the address the app asked for */
  readonly #sockets = new Map<number, Map<string, Promise<SocketHandle>>>()
  /** by address: the generations whose workers asked for it */
  readonly #askedBy = new Map<string, Set<number>>()
  /** by slot: the members whose servers accept on its sockets, their own */
  readonly #serving = new Map<number, Set<number>>()
  /** by slot: the member of another slot standing in for it */
  readonly #standIns = new Map<number, number>()

  /** The slot's socket for `address` (host:port as the app asked), bound on the first ask. Rejects as a bind would. */
  socketFor (slot: number, generation: number, address: string, target: ListenTarget): Promise<SocketHandle> {
    let bySlot = this.#sockets.get(slot)
    if (!bySlot) this.#sockets.set(slot, bySlot = new Map())
    let socket = bySlot.get(address)
    if (!socket) {
      socket = bind(target)
      bySlot.set(address, socket)
      socket.catch(() => bySlot.delete(address))
    }
    let generations = this.#askedBy.get(address)
    if (!generations) this.#askedBy.set(address, generations = new Set())
    generations.add(generation)
    return socket.then((handle) => {
      // an upgrade's commit closed it: the new primary accepts now
      if (handle.fd < 0) throw Object.assign(new Error(`listen EBADF: ${address}: the socket was handed over to a new primary`), { code: 'EBADF' })
      return handle
    })
  }

  /** A member of `slot` accepts on the slot's sockets. Returns the member that stood in for the slot, to release. */
  serving (slot: number, member: number): number | undefined {
    let members = this.#serving.get(slot)
    if (!members) this.#serving.set(slot, members = new Set())
    members.add(member)
    const standIn = this.#standIns.get(slot)
    this.#standIns.delete(slot)
    return standIn
  }

  /** A member stopped accepting (it drains, or is gone): it serves nothing, and stands in for nothing, any more. */
  left (member: number): void {
    for (const members of this.#serving.values()) members.delete(member)
    for (const [slot, standIn] of this.#standIns) if (standIn === member) this.#standIns.delete(slot)
  }

  /**
   * After every change: the sockets of removed slots close where the kernel moves their
   * queues; once every slot runs the wished generation, the sockets of an address none
   * of its workers asked for close (a reload moved the app to another port); a slot
   * nobody accepts for gets a stand-in: of the ready members that serve a slot of their
   * own and are not stalled, the one standing in for the fewest. A stalled worker's
   * slot counts as one nobody accepts for: the kernel goes on queueing its share of
   * the connections there, and they would wait for the hang-kill. A stand-in is
   * released when the slot's worker beats again, or stalls itself. Returns what to
   * tell the workers.
   */
  tend (view: ClusterView): SocketStep[] {
    const steps: SocketStep[] = []
    const stalled = new Set(view.stalled)
    for (const [slot, sockets] of [...this.#sockets]) {
      let standIn = this.#standIns.get(slot)
      if (slot >= view.wanted && view.migrates) {
        if (standIn !== undefined) steps.push({ do: 'release', member: standIn, slot })
        this.#closeSlot(slot)
        continue
      }
      for (const [address, socket] of [...sockets]) {
        if (!view.settled || this.#askedBy.get(address)?.has(view.generation)) continue
        sockets.delete(address)
        void socket.then((h) => h.close(), () => {})
      }
      if (!sockets.size) {
        if (standIn !== undefined) steps.push({ do: 'release', member: standIn, slot })
        this.#closeSlot(slot)
        continue
      }
      const accepting = [...this.#serving.get(slot) ?? []].some((m) => !stalled.has(m))
      if (standIn !== undefined && (accepting || stalled.has(standIn))) {
        steps.push({ do: 'release', member: standIn, slot })
        this.#standIns.delete(slot)
        standIn = undefined
      }
      if (accepting || standIn !== undefined) continue
      const own = new Set([...this.#serving.values()].flatMap((members) => [...members]))
      const load = (m: number): number => [...this.#standIns.values()].filter((x) => x === m).length
      const member = view.ready.filter((m) => own.has(m) && !stalled.has(m)).sort((a, b) => load(a) - load(b) || a - b)[0]
      if (member === undefined) continue
      this.#standIns.set(slot, member)
      for (const [address, socket] of sockets) steps.push({ do: 'adopt', member, slot, address, socket })
    }
    return steps
  }

  /** Closes the primary's copies of the slot's sockets: they close once its workers have closed theirs. */
  #closeSlot (slot: number): void {
    for (const socket of this.#sockets.get(slot)?.values() ?? []) void socket.then((h) => h.close(), () => {})
    this.#sockets.delete(slot)
    this.#serving.delete(slot)
    this.#standIns.delete(slot)
  }

  closeAll (): void {
    for (const slot of [...this.#sockets.keys()]) this.#closeSlot(slot)
  }
}

async function bind ({ port, host }: ListenTarget): Promise<SocketHandle> {
  // as listen() does: a name is looked up, and its first address bound
  const address = host === undefined || isIP(host) ? host : (await dns.lookup(host)).address
  const family = address === undefined ? undefined : isIP(address)
  const create = (net as unknown as { _createServerHandle: CreateServerHandle })._createServerHandle
  const handle = create(address ?? null, port, family, undefined, UV_TCP_REUSEPORT)
  const where = `${address ?? '::'}:${port}`
  if (typeof handle === 'number') {
    const [code, text] = util.getSystemErrorMap().get(handle) ?? [util.getSystemErrorName(handle), 'error']
    throw Object.assign(new Error(`listen ${code}: ${text} ${where}`), { code, errno: handle, syscall: 'listen', address, port })
  }
  // libuv keeps a failed bind's error for the listen() that follows, which is the
  // worker's, on a copy of the socket that knows nothing of it: that listen would bind
  // a random port. So the bind is checked here.
  if (!boundToPort(handle, port)) {
    handle.close()
    throw Object.assign(new Error(`listen EADDRINUSE: address already in use ${where}: a socket without SO_REUSEPORT holds the port (another program's, or in an upgrade from another scheduling policy, the old primary's: switching to reuseport takes a restart)`),
      { code: 'EADDRINUSE', syscall: 'listen', address, port })
  }
  return handle
}
