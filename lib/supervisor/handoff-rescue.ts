// With the round-robin policy, Node's primary hands each connection to a worker and
// waits for the worker's ack before closing its own copy. A worker that dies before
// it acks (a crash, or a hang ended by SIGKILL) never answers: the primary keeps the
// socket open and the client waits forever. When such a worker exits, answer for it
// ("not accepted"): Node's round-robin handle then gives the connection to another
// worker, exactly as it does for a worker that was closing its server.
// This reads two fields of Node's cluster protocol (act: 'newconn', seq/ack), stable
// since the round-robin handle exists; nothing happens if they ever change.
import type { Worker } from 'node:cluster'

interface ClusterMessage { cmd?: string, act?: string, seq?: number, ack?: number }

export function rescueHandoffs (worker: Worker): void {
  const proc = worker.process
  const unacked = new Set<number>()
  const send = proc.send.bind(proc) as (...args: unknown[]) => boolean
  proc.send = ((message: ClusterMessage, handle?: unknown, ...rest: unknown[]) => {
    if (message?.cmd === 'NODE_CLUSTER' && message.act === 'newconn' && handle && message.seq !== undefined) {
      unacked.add(message.seq)
    }
    return send(message, handle, ...rest)
  }) as typeof proc.send
  proc.on('internalMessage', (message: ClusterMessage) => {
    if (message?.cmd === 'NODE_CLUSTER' && message.ack !== undefined) unacked.delete(message.ack)
  })
  worker.once('exit', () => {
    for (const seq of unacked) proc.emit('internalMessage', { cmd: 'NODE_CLUSTER', ack: seq, accepted: false })
    unacked.clear()
  })
}
