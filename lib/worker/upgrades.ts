// Upgraded connections (WebSockets and the like) of the app's servers. They are not
// idle keep-alive sockets: a drain leaves them to the app (onDrain), refuses new
// upgrades with a 503, and at the end tells WebSocket clients "going away" (1001)
// instead of cutting them (1006).
import type net from 'node:net'
import type { Socket } from 'node:net'
import { STATUS_CODES, type IncomingMessage } from 'node:http'

/** Every upgraded socket still open, and whether its upgrade was to a WebSocket. */
export const upgraded = new Map<Socket, { websocket: boolean }>()

/** Tracks the server's upgrades; costs nothing on plain requests. */
export function trackUpgrades (server: net.Server): void {
  server.prependListener('upgrade', (req: IncomingMessage, socket: Socket) => {
    upgraded.set(socket, { websocket: String(req.headers.upgrade).toLowerCase() === 'websocket' })
    socket.once('close', () => upgraded.delete(socket))
  })
}

/** A response written on a raw socket, built from its parts: the status line from http.STATUS_CODES, the length counted. */
function rawResponse (status: number, headers: Record<string, string>, body: string): string {
  const head = [`HTTP/1.1 ${status} ${STATUS_CODES[status]}`, ...Object.entries({ ...headers, 'Content-Length': String(Buffer.byteLength(body)) }).map(([k, v]) => `${k}: ${v}`)]
  return `${head.join('\r\n')}\r\n\r\n${body}`
}

const REFUSAL = rawResponse(503, { 'Retry-After': '1', Connection: 'close', 'Content-Type': 'text/plain' }, 'this worker is draining; reconnect\n')

/**
 * From now on the server refuses upgrade requests with 503 and Retry-After before the
 * app sees them: the app's own 'upgrade' listeners are set aside (a drain never ends).
 */
export function refuseUpgrades (server: net.Server): void {
  for (const listener of server.listeners('upgrade')) server.off('upgrade', listener as (...args: unknown[]) => void)
  server.on('upgrade', (_req: IncomingMessage, socket: Socket) => {
    socket.end(REFUSAL)
    socket.once('finish', () => socket.destroy())
  })
}

/** A WebSocket close frame, server to client (unmasked): code 1001 "going away". */
function closeFrame (reason: string): Buffer {
  const text = Buffer.from(reason).subarray(0, 123)
  return Buffer.concat([Buffer.from([0x88, 2 + text.length, 0x03, 0xe9]), text])
}
const GOING_AWAY = closeFrame('server going away')

/**
 * Ends an upgraded socket as gently as cluster-run can without knowing the app's
 * protocol: a WebSocket gets a close frame 1001 and `waitMs` to answer, anything else
 * is ended at once.
 */
export function goAway (socket: Socket, waitMs: number): void {
  if (socket.destroyed) return
  const info = upgraded.get(socket)
  if (info?.websocket && socket.writable) {
    socket.end(GOING_AWAY)
    setTimeout(() => socket.destroy(), waitMs).unref()
  } else {
    socket.destroy()
  }
}
