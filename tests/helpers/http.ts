// Small HTTP and timing helpers for the integration tests (127.0.0.1 only).
import http from 'node:http'
import net from 'node:net'

export interface Reply {
  status: number
  headers: http.IncomingHttpHeaders
  body: string
  json: () => any
}

export function get (url: string, options: http.RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: 15_000, ...options }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c })
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, json: () => JSON.parse(body) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in time`)))
  })
}

/** A port that was free a moment ago. */
export async function freePort (): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function until<T> (check: () => T | Promise<T>, what: string, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value
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
