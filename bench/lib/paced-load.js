// An open-loop load at a fixed rate, for the footprint table: `connections` raw
// keep-alive TCP connections and a 1 ms scheduler that sends, at every tick, the
// requests that fell due since the previous one (elapsed time × rate), each on an
// idle connection (no pipelining). A request that finds no idle connection waits in
// a queue ("backlog") and goes out as soon as a connection is free, so the rate
// holds as long as the server keeps up; the backlog's maximum shows when it did not.
// autocannon's `overallRate` sends each second's quota as fast as it can and then
// waits for the next second (bursts, not a fixed rate), hence this client.
//
// Responses must carry Content-Length (chunked bodies are not parsed). A connection
// that fails is counted and replaced; its request in flight counts as an error.
import net from 'node:net'
import { summarize } from './stats.js'

const HEADER_END = Buffer.from('\r\n\r\n')

/**
 * Opens the connections; returns { run({ rate, durationS }), stop(), close() }. run()
 * can be called several times (a warm-up, then the measured phase) on the same
 * connections; stop() ends the current run early.
 */
export async function pacedClient ({ port, path, connections, timeoutS = 10 }) {
  const request = Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`)
  const conns = []
  const idle = []
  let closing = false
  let phase = null // counters of the current run()

  function connect (replacement = false) {
    return new Promise((resolve) => {
      const conn = { socket: null, busy: false, sentAt: 0, buf: null, alive: false }
      const socket = net.connect({ port, host: '127.0.0.1', noDelay: true })
      conn.socket = socket
      socket.setTimeout(timeoutS * 1000, () => socket.destroy(Object.assign(new Error('request timed out'), { code: 'TIMEOUT' })))
      socket.once('connect', () => {
        conn.alive = true
        conns.push(conn)
        idle.push(conn)
        resolve(conn)
        pump()
      })
      socket.on('data', (chunk) => onData(conn, chunk))
      socket.on('error', (err) => {
        if (phase && !closing) {
          const kind = err?.code ?? err?.message ?? String(err)
          phase.errorKinds[kind] = (phase.errorKinds[kind] ?? 0) + 1
        }
      })
      socket.once('close', () => {
        const wasAlive = conn.alive
        conn.alive = false
        const i = conns.indexOf(conn)
        if (i >= 0) conns.splice(i, 1)
        const j = idle.indexOf(conn)
        if (j >= 0) idle.splice(j, 1)
        if (conn.busy && phase) { phase.errors++; phase.inflight-- }
        conn.busy = false
        if (!wasAlive) resolve(null)
        // replace it (a worker was killed, or the server closed the connection); a
        // failed replacement is retried, a failed first connection is not
        if (!closing && (wasAlive || replacement)) setTimeout(() => { if (!closing) connect(true) }, wasAlive ? 0 : 20)
      })
    })
  }

  function onData (conn, chunk) {
    conn.buf = conn.buf ? Buffer.concat([conn.buf, chunk]) : chunk
    for (;;) {
      const end = conn.buf.indexOf(HEADER_END)
      if (end < 0) return
      const head = conn.buf.toString('latin1', 0, end)
      const status = Number(head.slice(9, 12))
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head)
      if (!m) {
        conn.socket.destroy(Object.assign(new Error('response without Content-Length'), { code: 'NO_LENGTH' }))
        return
      }
      const total = end + 4 + Number(m[1])
      if (conn.buf.length < total) return
      conn.buf = conn.buf.length === total ? null : conn.buf.subarray(total)
      const at = performance.now()
      if (phase && conn.busy) {
        phase.inflight--
        phase.lastResponseAt = at
        phase.latencies.push(at - conn.sentAt)
        if (status >= 200 && status < 300) phase.ok++
        else phase.non2xx++
      }
      conn.busy = false
      if (/\r\nconnection:\s*close/i.test(head)) { conn.socket.end(); return }
      idle.push(conn)
      if (!conn.buf) break
    }
    pump()
  }

  /** Sends what is due and queued while idle connections remain. */
  function pump () {
    if (!phase) return
    while (phase.backlog > 0 && idle.length > 0) {
      const conn = idle.pop()
      if (!conn.alive) continue
      conn.busy = true
      conn.sentAt = performance.now()
      phase.backlog--
      phase.sent++
      phase.inflight++
      conn.socket.write(request)
    }
  }

  const opened = await Promise.all(Array.from({ length: connections }, () => connect()))
  if (opened.some((c) => c === null)) close()
  if (opened.some((c) => c === null)) throw new Error(`paced load: could not open ${connections} connections to 127.0.0.1:${port}`)

  async function run ({ rate, durationS }) {
    if (phase) throw new Error('paced load: one run at a time')
    const p = phase = {
      rate, durationS, stopAt: 0, total: 0, scheduled: 0, sent: 0, ok: 0, non2xx: 0, errors: 0, errorKinds: {},
      inflight: 0, backlog: 0, maxBacklog: 0, latencies: [], lastResponseAt: 0,
    }
    const startedAt = performance.now()
    p.stopAt = startedAt + durationS * 1000
    p.total = Math.round(rate * durationS)
    await new Promise((resolve) => {
      const tick = () => {
        const now = performance.now()
        const due = (now >= p.stopAt ? p.total : Math.min(p.total, Math.floor(((now - startedAt) / 1000) * rate))) - p.scheduled
        if (due > 0) { p.scheduled += due; p.backlog += due }
        if (p.backlog > p.maxBacklog) p.maxBacklog = p.backlog
        pump()
        if (p.scheduled >= p.total) { clearInterval(timer); resolve() }
      }
      const timer = setInterval(tick, 1)
    })
    // the queued and in-flight requests still count: wait for them (bounded)
    const drainBy = performance.now() + timeoutS * 1000
    while ((p.backlog > 0 || p.inflight > 0) && performance.now() < drainBy) await new Promise((resolve) => setTimeout(resolve, 2))
    const endedAt = performance.now()
    phase = null
    const lost = p.backlog + p.inflight
    const windowMs = (p.lastResponseAt || endedAt) - startedAt
    return {
      rate,
      durationS,
      connections,
      scheduled: p.scheduled,
      sent: p.sent,
      ok: p.ok,
      non2xx: p.non2xx,
      errors: p.errors,
      errorKinds: p.errorKinds,
      unfinished: lost,
      maxBacklog: p.maxBacklog,
      windowMs,
      achievedRate: (p.ok + p.non2xx) / (windowMs / 1000),
      latency: summarize(p.latencies),
    }
  }

  /** Ends the current run() now instead of at its duration (what is in flight still counts). */
  function stop () {
    if (!phase) return
    phase.stopAt = performance.now()
    phase.total = phase.scheduled
  }

  function close () {
    closing = true
    for (const conn of [...conns]) conn.socket.destroy()
  }

  return { run, stop, close }
}
