// With the round-robin policy, Node's primary hands each connection to a worker and
// waits for the worker's ack before closing its own copy. A worker that dies before
// it acks (a crash, or a hang ended by SIGKILL) never answers: the primary keeps the
// socket open and the client waits forever. When such a worker is gone, answer for it.
//
// Node's round-robin handle of an address lives while some worker listens on it: when
// the last one leaves (it exits, disconnects or closes its server), Node closes the
// listening socket and the connections queued in the handle, and forgets the handle.
// So the answer depends on whether the dead worker's handle still has a worker:
// - it does: "not accepted", and Node gives the connection to another worker, exactly
//   as it does for a worker that was closing its server;
// - it does not: "accepted", and Node closes its copy, so the client sees its
//   connection reset (as Node does for the connections queued in that handle), instead
//   of waiting forever in a handle that will never hand anything out again.
//
// This reads a few fields of Node's cluster protocol, stable since the round-robin
// handle exists: act 'newconn' with seq/ack, the reply to a 'queryServer' (key, errno)
// and act 'close' (key). Nothing happens if they ever change.
import type { Worker } from 'node:cluster'

interface ClusterMessage { cmd?: string, act?: string, seq?: number, ack?: number, key?: string, errno?: number | null }

/** The workers listening through one round-robin handle; a new handle for the same key is a new set. */
type Handle = Set<Worker>
const handles = new Map<string, Handle>()

function join (key: string, worker: Worker): void {
  let handle = handles.get(key)
  if (!handle) handles.set(key, handle = new Set())
  handle.add(worker)
}

function leave (key: string, worker: Worker): void {
  const handle = handles.get(key)
  if (!handle?.delete(worker) || handle.size > 0) return
  handles.delete(key) // Node closes it; the next listen on the key makes a new one
}

const isCluster = (m: ClusterMessage | undefined): m is ClusterMessage => m?.cmd === 'NODE_CLUSTER'

export function rescueHandoffs (worker: Worker): void {
  const proc = worker.process
  /** connections handed to this worker and not acknowledged yet: their seq, and the handle they came from */
  const unacked = new Map<number, Handle>()
  const keys = new Set<string>()
  const send = proc.send.bind(proc) as (...args: unknown[]) => boolean
  proc.send = ((message: ClusterMessage, handle?: unknown, ...rest: unknown[]) => {
    if (isCluster(message)) {
      if (message.act === 'newconn' && handle && message.seq !== undefined && message.key !== undefined) {
        const from = handles.get(message.key)
        if (from) unacked.set(message.seq, from)
      } else if (message.act === undefined && message.ack !== undefined && message.key !== undefined && !message.errno) {
        // the answer to its queryServer: the worker listens through the handle of this key
        keys.add(message.key)
        join(message.key, worker)
      }
    }
    return send(message, handle, ...rest)
  }) as typeof proc.send
  proc.on('internalMessage', (message: ClusterMessage) => {
    if (!isCluster(message)) return
    if (message.ack !== undefined) unacked.delete(message.ack)
    if (message.act === 'close' && message.key !== undefined) {
      keys.delete(message.key)
      leave(message.key, worker)
    }
  })
  // Answered once Node has taken the worker out of its handles, so that none of them can
  // hand the connection (or the next one) back to it. Node's own listeners, added at the
  // fork, run before these.
  let answered = false
  const answer = (): void => {
    if (answered) return
    answered = true
    for (const key of keys) leave(key, worker)
    keys.clear()
    for (const [seq, from] of [...unacked]) {
      unacked.delete(seq)
      proc.emit('internalMessage', { cmd: 'NODE_CLUSTER', ack: seq, accepted: from.size === 0 })
    }
  }
  proc.once('exit', () => {
    // Its channel closed first: Node's exit listener has just taken it out.
    if (!proc.connected) return answer()
    // Node takes it out on 'disconnect', once the channel's end is read. A channel that
    // ends while a connection is in flight to the worker ends without that event (Node
    // waits for the handle's ack first, forever): emit it for Node, as it would have.
    proc.once('disconnect', answer)
    const ended = Date.now()
    const wait = (): void => {
      if (answered) return
      if (!proc.connected) return void proc.emit('disconnect')
      // a channel still open long after its process died is held by a descendant of it
      if (Date.now() - ended > CHANNEL_END_MS) return void proc.disconnect()
      setTimeout(wait, 10)
    }
    setTimeout(wait, 10)
  })
}

/** How long after a worker's exit the primary waits for the end of its IPC channel. */
const CHANNEL_END_MS = 2000
