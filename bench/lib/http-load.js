// A second, protocol-abiding load generator for the restart table: node:http with
// a keep-alive Agent, `connections` loops each sending its next request as soon
// as the previous one is answered. Unlike autocannon it honours
// `Connection: close` (the Agent never reuses such a socket), so a request it
// loses is a request the server really dropped. No retries. It runs for
// `durationS`, or until `amount` requests were sent; a request unanswered after
// `timeoutS` is given up (its connection closed, as a client that stops waiting).
import http from 'node:http'
import { summarize } from './stats.js'

export async function httpLoad ({ port, path, connections, durationS = Infinity, amount = Infinity, timeoutS = 10, during }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections })
  const ok = []
  const statuses = {}
  const errorKinds = {}
  let errors = 0
  let timeouts = 0
  let non2xx = 0
  let lastResponseAt = 0
  let sent = 0
  const startedAt = performance.now()
  const stopAt = startedAt + durationS * 1000

  const once = () => new Promise((resolve) => {
    sent++
    const sentAt = performance.now()
    const req = http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      res.resume()
      res.on('end', () => {
        const ms = performance.now() - sentAt
        lastResponseAt = performance.now()
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1
        if (res.statusCode >= 200 && res.statusCode < 300) ok.push(ms)
        else non2xx++
        resolve()
      })
      res.on('error', fail)
    })
    req.setTimeout(timeoutS * 1000, () => {
      timeouts++
      req.destroy(Object.assign(new Error('request timed out'), { code: 'TIMEOUT' }))
    })
    req.on('error', fail)
    let failed = false
    function fail (err) {
      if (failed) return
      failed = true
      if (err?.code !== 'TIMEOUT') errors++
      const kind = err?.code ?? err?.message ?? String(err)
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1
      resolve()
    }
  })

  const loop = async () => {
    while (performance.now() < stopAt && sent < amount) await once()
  }
  const duringPromise = during ? Promise.resolve().then(() => during(startedAt)) : undefined
  duringPromise?.catch(() => {})
  await Promise.all(Array.from({ length: connections }, loop))
  agent.destroy()
  const duringResult = duringPromise ? await duringPromise : undefined
  const settledAt = performance.now()
  const windowMs = (lastResponseAt || settledAt) - startedAt
  return {
    client: 'node:http',
    path,
    connections,
    durationS,
    sent,
    settledAt,
    windowMs,
    ok: ok.length,
    non2xx,
    errors: errors + timeouts,
    timeouts,
    failed: errors + timeouts + non2xx,
    unanswered: 0, // every request ends in a response or an error here
    statuses,
    errorKinds,
    rps: ok.length / (windowMs / 1000),
    latencyOk: summarize(ok),
    duringResult,
  }
}
