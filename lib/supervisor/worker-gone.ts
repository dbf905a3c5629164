// When a worker is really gone: its process has exited and its IPC channel has ended.
// Node emits the process's 'exit' and the channel's 'disconnect' in either order; the
// messages the worker sent last (its counts at exit, a connection's ack) may still be
// unread at 'exit'. Waiting for both means every message it sent has been delivered,
// and Node's cluster has taken it out of its round-robin handles.
import type { Worker } from 'node:cluster'

/** How long after a worker's exit the primary waits for the end of its IPC channel. */
const CHANNEL_END_MS = 2000

export function whenGone (worker: Worker, done: (code: number | null, signal: NodeJS.Signals | null) => void): void {
  const proc = worker.process
  let gone = false
  proc.once('exit', (code, signal) => {
    const finish = (): void => {
      if (gone) return
      gone = true
      done(code, signal)
    }
    // Its channel ended first: every message was delivered, and Node's exit listener
    // (added at the fork, before this one) has just taken it out of its handles.
    if (!proc.connected) return finish()
    // Node takes it out on 'disconnect', once the channel's end is read. A channel that
    // ends while a connection is in flight to the worker ends without that event (Node
    // waits for the handle's ack first, forever): it is emitted for Node, as it would have.
    proc.once('disconnect', finish)
    const exitedAt = Date.now()
    const wait = (): void => {
      if (gone) return
      if (!proc.connected) proc.emit('disconnect')
      // a channel still open long after its process died is held by a descendant of it
      else if (Date.now() - exitedAt > CHANNEL_END_MS) proc.disconnect()
      else setTimeout(wait, 10)
    }
    setTimeout(wait, 10)
  })
}
