// What a listen() call of the app asks for, when it is a TCP port: sticky sessions
// and reuseport serve those listens their own way, and leave every other one to Node.

export interface TcpTarget { port: number, host?: string, backlog?: number }

/** The port, host and backlog of a TCP listen() call; undefined for a pipe, a handle, or port 0. */
export function tcpTarget (args: unknown[]): TcpTarget | undefined {
  const [first, second, third] = args
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    const port = Number(first)
    const host = typeof second === 'string' ? second : undefined
    const backlog = typeof second === 'number' ? second : typeof third === 'number' ? third : undefined
    return port > 0 ? { port, host, backlog } : undefined
  }
  if (first && typeof first === 'object') {
    const o = first as Record<string, unknown>
    if ('path' in o || 'fd' in o || 'handle' in o || '_handle' in o || o.port === undefined) return undefined
    const port = Number(o.port)
    return port > 0 ? { port, host: typeof o.host === 'string' ? o.host : undefined, backlog: typeof o.backlog === 'number' ? o.backlog : undefined } : undefined
  }
  return undefined
}

/** host:port as the app asked (":3000" without a host): how the primary and the worker name a listen */
export function addressKey ({ port, host }: TcpTarget): string {
  return `${host ?? ''}:${port}`
}
