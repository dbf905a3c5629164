// When a worker is really gone: its process has exited, its IPC channel has ended and
// so have its stdout and stderr pipes. Node emits the process's 'exit', the channel's
// 'disconnect' and the pipes' 'close' in any order; the messages the worker sent last
// (its counts at exit, a connection's ack) and the lines it wrote last may still be
// unread at 'exit'. Waiting for all of them means every message and every line is in,
// and Node's cluster has taken the worker out of its round-robin handles.
import type { Worker } from 'node:cluster'

/** How long after a worker's exit the primary waits for the end of its channel and pipes. */
const END_MS = 2000

export function whenGone (worker: Worker, done: (code: number | null, signal: NodeJS.Signals | null) => void): void {
  const proc = worker.process
  let gone = false
  let exit: [number | null, NodeJS.Signals | null] | undefined
  let channelEnded = false
  let pipesOpen = 0
  const check = (): void => {
    if (gone || !exit || !channelEnded || pipesOpen > 0) return
    gone = true
    done(...exit)
  }
  for (const pipe of [proc.stdout, proc.stderr]) {
    if (!pipe) continue
    pipesOpen++
    pipe.once('close', () => { pipesOpen--; check() })
  }
  proc.once('exit', (code, signal) => {
    exit = [code, signal]
    // Its channel ended first: every message was delivered, and Node's exit listener
    // (added at the fork, before this one) has just taken it out of its handles.
    if (!proc.connected) {
      channelEnded = true
    } else {
      // Node takes it out on 'disconnect', once the channel's end is read. A channel that
      // ends while a connection is in flight to the worker ends without that event (Node
      // waits for the handle's ack first, forever): it is emitted for Node, as it would have.
      proc.once('disconnect', () => { channelEnded = true; check() })
    }
    const exitedAt = Date.now()
    const wait = (): void => {
      if (gone) return
      const late = Date.now() - exitedAt > END_MS
      if (!channelEnded && !proc.connected) proc.emit('disconnect')
      // a channel or a pipe still open long after its process died is held by a descendant of it
      else if (!channelEnded && late) proc.disconnect()
      if (late && pipesOpen > 0) {
        pipesOpen = 0
        check()
      }
      if (!gone) setTimeout(wait, 10)
    }
    check()
    if (!gone) setTimeout(wait, 10)
  })
}
