// One request to a control socket, with a deadline.
import http from 'node:http'

/** Nothing listens on the socket: no file, or a primary that died without removing it. */
export class NotRunningError extends Error {
  override name = 'NotRunningError'
}

export interface ControlReply {
  status: number
  json: unknown
}

export function request (socketPath: string, method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = http.request({
      socketPath,
      method,
      path,
      agent: false,
      headers: { host: 'localhost', ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) },
    }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
      res.on('end', () => {
        clearTimeout(timer)
        try {
          // newline-delimited JSON (the logs): an array of its lines
          const ndjson = /ndjson/.test(res.headers['content-type'] ?? '')
          resolve({ status: res.statusCode ?? 0, json: ndjson ? text.split('\n').filter(Boolean).map((line) => JSON.parse(line)) : JSON.parse(text) })
        } catch {
          reject(new Error(`the control socket answered ${res.statusCode} with a body that is not JSON`))
        }
      })
      res.on('error', reject)
    })
    const timer = setTimeout(() => req.destroy(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`)), timeoutMs)
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') reject(new NotRunningError(`no cluster listens on ${socketPath}`))
      else reject(err)
    })
    req.end(payload)
  })
}
