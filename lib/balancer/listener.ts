// The primary's side of sticky sessions: it accepts the connections of an address
// itself (paused, nothing read), finds the client's key (its address, or a header of
// the first request), picks the key's slot by rendezvous hashing, and hands the socket
// with the bytes it read to that slot's ready worker over IPC.
import net, { type Socket } from 'node:net'
import type { Worker } from 'node:cluster'
import { pickSlot } from './rendezvous.js'
import { headEnd, headerValue, MAX_HEAD_BYTES } from './key.js'
import type { ToWorker } from '../protocol/messages.js'

export type StickyBy = 'address' | { header: string }

export interface StickyTarget {
  slots: () => number
  /** the ready worker of the slot that listens on `address`, if any */
  workerFor: (slot: number, address: string) => Worker | undefined
}

export interface StickyAddress { port: number, host?: string, backlog?: number }

/** How long a client may take to send its first request's head (header keys). */
const HEAD_TIMEOUT_MS = 10_000

export interface StickyListener {
  close: () => void
}

export async function openStickyListener (key: string, where: StickyAddress, by: StickyBy, target: StickyTarget): Promise<StickyListener> {
  const hand = (socket: Socket, clientKey: string, head?: Buffer): void => {
    const slot = pickSlot(clientKey, target.slots(), (s) => target.workerFor(s, key) !== undefined)
    const worker = slot === undefined ? undefined : target.workerFor(slot, key)
    if (!worker) {
      socket.destroy()
      return
    }
    const message: ToWorker = { clusterRun: 'sticky-conn', address: key, ...(head?.length ? { head: head.toString('base64') } : {}) }
    worker.send(message, socket, { keepOpen: false }, (err) => { if (err) socket.destroy() })
  }
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    socket.on('error', () => socket.destroy())
    if (by === 'address') return hand(socket, socket.remoteAddress ?? '')
    readHead(socket, (head) => hand(socket, headerValue(head, by.header) ?? socket.remoteAddress ?? '', head))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: where.port, host: where.host, backlog: where.backlog }, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return { close: () => { server.close() } }
}

/** Reads until the end of the first request's head (or MAX_HEAD_BYTES), then pauses. */
function readHead (socket: Socket, done: (head: Buffer) => void): void {
  let head = Buffer.alloc(0)
  const timer = setTimeout(() => socket.destroy(), HEAD_TIMEOUT_MS)
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk])
    if (headEnd(head) === -1 && head.length < MAX_HEAD_BYTES) return
    socket.pause()
    socket.off('data', onData)
    clearTimeout(timer)
    done(head)
  }
  socket.on('data', onData)
  socket.once('close', () => clearTimeout(timer))
  socket.resume()
}
