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
  const startedAt = performance.now()
  const instance = autocannon({
    url: `http://127.0.0.1:${port}${path}`,
    connections,
    ...(amount ? { amount } : { duration: durationS }),
    timeout: timeoutS,
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
    statuses,
    errorKinds,
    rps: ok.length / (windowMs / 1000),
    latencyOk: summarize(ok),
    latencyShed: summarize(shed),
    latencyOther: summarize(otherStatus),
    duringResult,
  }
}
