// Whether schedulingPolicy 'reuseport' can run here, and whether the kernel moves a
// closing listener's queue to the others of its group. Read by the config (which
// falls back to 'rr' where it cannot run) and by the primary (which reports it).
import fs from 'node:fs'

/** libuv's UV_TCP_REUSEPORT, the bind flag listen({ reusePort: true }) passes (Node 22.12+). */
export const UV_TCP_REUSEPORT = 2

export type ReusePortSupport = { supported: true } | { supported: false, reason: string }

/** Node gives listen() `reusePort` (libuv's UV_TCP_REUSEPORT) from 22.12 and 23.1. */
const MIN_NODE: Array<[major: number, minor: number]> = [[22, 12], [23, 1]]

/**
 * SO_REUSEPORT with the kernel's even spreading of connections: Linux (3.9+, every
 * kernel Node supports). Other systems either lack it or give every connection to
 * the last socket bound (FreeBSD before SO_REUSEPORT_LB, macOS).
 */
export function reusePortSupport (version: string, platform: NodeJS.Platform): ReusePortSupport {
  if (platform !== 'linux') return { supported: false, reason: `SO_REUSEPORT spreads connections across sockets on Linux only (this is ${platform})` }
  const [major, minor] = version.replace(/^v/, '').split('.').map(Number)
  const ok = major > 23 || MIN_NODE.some(([ma, mi]) => major === ma && minor >= mi)
  return ok ? { supported: true } : { supported: false, reason: `Node ${version} has no listen({ reusePort }) (Node 22.12 or later has it)` }
}

/**
 * Whether a TCP handle from net._createServerHandle holds `port`. libuv defers a
 * bind's EADDRINUSE to the listen() that follows, so the handle comes back either
 * way; an unbound one names another port (0) in getsockname.
 */
export function boundToPort (handle: { getsockname: (out: { port?: number }) => number }, port: number): boolean {
  const bound: { port?: number } = {}
  return handle.getsockname(bound) === 0 && bound.port === port
}

/**
 * net.ipv4.tcp_migrate_req (Linux 5.14+): 1 moves the connections queued on a
 * listener that closes to another listener of its port; 0 resets them. Null when
 * the kernel has no such setting.
 */
export function tcpMigrateReq (read: (file: string) => string = (file) => fs.readFileSync(file, 'utf8')): boolean | null {
  try {
    return read('/proc/sys/net/ipv4/tcp_migrate_req').trim() === '1'
  } catch {
    return null
  }
}
