// One autocannon run, in this process, with every response's latency recorded
// by status (autocannon's own histogram mixes statuses) and every error by kind.
import autocannon from 'autocannon'
import { summarize } from './stats.js'

/**
 * opts: { port, path, connections, amount | durationS, timeoutS, during }
 * `during(startedAt)` runs alongside the load (e.g. a reload); its result is
 * returned as `duringResult`, awaited after the load finished.
 */
export async function load ({ port, path, connections, amount, durationS, timeoutS = 60, during }) {
  const ok = []
  const shed = [] // 503
  const otherStatus = []
  const statuses = {}
  const errorKinds = {}
  let lastResponseAt = 0
  // Per connection: requests written, answered, failed. autocannon does not honour
  // `Connection: close`; when a server ends a socket with a request of the client
  // still on it, autocannon reconnects and sends a new one without counting the
  // old one anywhere. Those show up here as written but never answered nor failed.
  const perClient = []
  const setupClient = (client) => {
    const counts = { sent: 0, answered: 0, failed: 0 }
    perClient.push(counts)
    client.on('request', () => { counts.sent++ })
    client.on('response', () => { counts.answered++ })
    client.on('connError', () => { counts.failed++ })
    client.on('timeout', () => { counts.failed++ })
  }
  const startedAt = performance.now()
  const instance = autocannon({
    url: `http://127.0.0.1:${port}${path}`,
    connections,
    ...(amount ? { amount } : { duration: durationS }),
    timeout: timeoutS,
    setupClient,
  })
  instance.on('response', (client, statusCode, bytes, latencyMs) => {
    lastResponseAt = performance.now()
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1
    if (statusCode >= 200 && statusCode < 300) ok.push(latencyMs)
    else if (statusCode === 503) shed.push(latencyMs)
    else otherStatus.push(latencyMs)
  })
  instance.on('reqError', (err) => {
    const kind = err?.code ?? err?.message ?? String(err)
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1
  })
  const duringPromise = during ? Promise.resolve().then(() => during(startedAt)) : undefined
  // a failing `during` must not leave the load running unobserved
  duringPromise?.catch(() => {})
  const result = await instance
  const duringResult = duringPromise ? await duringPromise : undefined
  const windowMs = (lastResponseAt || performance.now()) - startedAt
  const non2xx = shed.length + otherStatus.length
  // the last request of each connection may still be on its way when the load stops
  const unanswered = perClient.reduce((sum, c) => sum + Math.max(0, c.sent - c.answered - c.failed - 1), 0)
  return {
    path,
    connections,
    amount: amount ?? null,
    durationS: durationS ?? null,
    windowMs,
    ok: ok.length,
    non2xx,
    shed: shed.length,
    errors: result.errors, // autocannon counts timeouts among the errors
    timeouts: result.timeouts,
    failed: result.errors + non2xx,
    unanswered,
    statuses,
    errorKinds,
    rps: ok.length / (windowMs / 1000),
    latencyOk: summarize(ok),
    latencyShed: summarize(shed),
    latencyOther: summarize(otherStatus),
    duringResult,
  }
}
