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

/** Starts watching the worker's handoffs; returns the rescue, to call once the worker is gone (see worker-gone.ts). */
export function rescueHandoffs (worker: Worker): () => void {
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
  // Once the worker is gone, Node has taken it out of its handles: none of them can
  // hand the connection (or the next one) back to it.
  return () => {
    for (const key of keys) leave(key, worker)
    keys.clear()
    for (const [seq, from] of [...unacked]) {
      unacked.delete(seq)
      proc.emit('internalMessage', { cmd: 'NODE_CLUSTER', ack: seq, accepted: from.size === 0 })
    }
  }
}
