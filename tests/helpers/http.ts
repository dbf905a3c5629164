// HTTP and timing helpers for the tests (127.0.0.1 only): one way to send a
// request and read the whole answer, to find a free port, to serve and close a
// server, and to poll until something is true.
import { once } from 'node:events'
import http from 'node:http'
import net from 'node:net'
import type { Test } from 'tap'

export interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
  json: () => any
}

/**
 * Sends one request (GET unless `options.method` says otherwise) and resolves
 * with the whole answer. By default it goes over a connection of its own that
 * closes after it (`agent: false`); pass `agent` to use keep-alive connections.
 * A request that gets no answer within `options.timeout` (15 s) fails.
 */
export function get (url: string, options: http.RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, timeout: 15_000, ...options }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error(`${req.method} ${url}: no answer in time`)))
    req.end()
  })
}

/**
 * A keep-alive agent whose sockets are destroyed when `t` ends. Over it, a
 * `Connection: close` in a response comes from the server under test, not from
 * the server echoing a client that asked to close.
 */
export function keepAliveAgent (t: Test, options: http.AgentOptions = {}): http.Agent {
  const agent = new http.Agent({ keepAlive: true, ...options })
  t.teardown(() => agent.destroy())
  return agent
}

export interface Client {
  /** get() over this client's keep-alive connections. */
  get: (url: string, options?: http.RequestOptions) => Promise<Reply>
  /** get() with `Accept: application/json`. */
  getJson: (url: string) => Promise<Reply>
}

/** get() over one keep-alive agent (see keepAliveAgent), closed when `t` ends. */
export function keepAliveClient (t: Test): Client {
  const agent = keepAliveAgent(t)
  const client: Client = {
    get: (url, options = {}) => get(url, { agent, ...options }),
    getJson: (url) => client.get(url, { headers: { accept: 'application/json' } }),
  }
  return client
}

/** A port that was free a moment ago. */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** The base URL of a listening server, `http://127.0.0.1:<port>`. */
export function urlOf (server: net.Server): string {
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
}

/** Listens on a free port of 127.0.0.1; resolves with the server's base URL. */
export async function listen (server: net.Server): Promise<string> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return urlOf(server)
}

/** Closes the server and every connection it still has; resolves once it is closed. */
export async function closeServer (server: http.Server): Promise<void> {
  const closed = once(server, 'close')
  server.close()
  server.closeAllConnections()
  await closed
}

/**
 * Serves `listener` on a free port of 127.0.0.1 until `t` ends; then closes
 * `guard` (the middleware in front of the listener, if any), the server and
 * every connection it still has.
 */
export async function serve (t: Test, listener: http.RequestListener, guard?: { close: () => void }): Promise<{ server: http.Server, url: string }> {
  const server = http.createServer(listener)
  const url = await listen(server)
  t.teardown(async () => {
    guard?.close()
    await closeServer(server)
  })
  return { server, url }
}

/** Polls `check` until it returns a truthy value (which it resolves with) or the deadline passes: a deadline for an event, far beyond its pace. */
export async function until<T> (check: () => T | Promise<T>, what: string, timeoutMs = 30_000, everyMs = 25): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value as NonNullable<T>
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, everyMs))
  }
}

/** GETs until `count` distinct values of `key(reply)` were seen. */
export async function distinct (url: string, count: number, key: (r: Reply) => unknown = (r) => r.json().pid, maxRequests = 200): Promise<Set<unknown>> {
  const seen = new Set<unknown>()
  for (let i = 0; i < maxRequests && seen.size < count; i++) seen.add(key(await get(url)))
  return seen
}

function parseRaw (raw: string): Reply {
  const [head = '', body = ''] = raw.split('\r\n\r\n', 2)
  const [statusLine = '', ...headerLines] = head.split('\r\n')
  const headers: http.IncomingHttpHeaders = {}
  for (const line of headerLines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body, json: () => JSON.parse(body) }
}

/**
 * Sends `count` GETs of `path` at once over raw sockets, asking for JSON: every
 * connection is open and accepted by the server before any request byte is
 * written, so the server reads them all in the same turn of its event loop.
 */
export async function burst (server: http.Server, path: string, count: number): Promise<Reply[]> {
  const { port } = server.address() as net.AddressInfo
  let accepted = 0
  const allAccepted = new Promise<void>((resolve) => {
    const onConnection = (): void => {
      if (++accepted === count) {
        server.off('connection', onConnection)
        resolve()
      }
    }
    server.on('connection', onConnection)
  })
  const sockets = await Promise.all(Array.from({ length: count }, () => new Promise<net.Socket>((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket))
    socket.on('error', reject)
  })))
  await allAccepted
  const responses = sockets.map((socket) => new Promise<Reply>((resolve, reject) => {
    const chunks: Buffer[] = []
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('end', () => resolve(parseRaw(Buffer.concat(chunks).toString('utf8'))))
    socket.on('error', reject)
  }))
  for (const socket of sockets) {
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n`)
  }
  return Promise.all(responses)
}
