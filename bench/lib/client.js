// The bench's one HTTP/1.1 load client. It runs in the bench process on raw `net`
// sockets, with each connection's request bytes built once, because the load shares
// the machine's cores with the server under test: against a hello-world server a
// node:http keep-alive client used two to three times the CPU per request of this
// one, autocannon about as much as this one or a little more.
//
// Three ways to send, chosen by `rate` and `keepAlive`:
//   closed loop  no rate: `connections` lanes, each sending its next request as soon
//                as the previous one ended (answered, failed or given up), over a
//                keep-alive connection, or over a new connection each with
//                keepAlive: false;
//   paced        rate, keep-alive: `rate` requests per second over a pool of
//                `connections` connections, each used in turn; a request due while
//                all are busy waits in a queue (the backlog) for the next free one;
//   open loop    rate, keepAlive: false: `rate` requests per second, each on a
//                connection of its own, sent on schedule whatever the answers.
// A load ends after `durationS`, after `amount` requests, or at stop(), whichever
// comes first; the requests under way then still count (the load waits at most
// `timeoutS` for them and for a paced load's backlog; what is left is `unfinished`).
//
// Every request ends once, as one of: a response read to its end and counted under
// the name `classify(response)` gives it ('ok' for 2xx and 'other' by default); an
// error, by code ('EOF' when the server closed the connection before a complete
// response); or a timeout, `timeoutS` after it was sent (given up, its connection
// closed, as a client that stops waiting). No retries, no pipelining; a connection
// is never reused after a response with `Connection: close` (or an HTTP/1.0 one
// without keep-alive). Latency runs from the moment a request was written to its
// response's last byte, summarized per class; in the open loop it runs from the
// moment the request was due, so that a late send counts. A paced load that falls
// behind shows it in `maxBacklog` and `achievedRate`.
import net from 'node:net'
import { summarize } from './stats.js'

const HEAD_END = '\r\n\r\n'
const MAX_HEAD = 64 * 1024

/** What classify() receives: the status, the raw head and the body of one response. */
class Response {
  constructor (status, head, body) {
    this.status = status
    this.head = head
    this.body = body
  }

  /** The value of a response header (the first one of that name), or undefined. */
  header (name) {
    return new RegExp(`\\r\\n${name}:[ \\t]*([^\\r]*)`, 'i').exec(this.head)?.[1]
  }
}

const twoXX = (res) => (res.status >= 200 && res.status < 300 ? 'ok' : 'other')

/**
 * Starts a load; returns { done, stop() }: both resolve with the result once the
 * load has ended. Options:
 *   port, host ('127.0.0.1'), path ('/'), headers ({} or (n) => ({}) for the n-th
 *   connection opened, from 0), connections (lanes / pool size; unused by the open
 *   loop), keepAlive (true), rate (req/s; none: closed loop), durationS, amount,
 *   timeoutS (10; 0: none), classify, during(startedAt) (runs beside the load; its
 *   result is `duringResult`), onSettle({ class, status, error, startAt, at,
 *   response, connection }) (every request as it ends; `connection` is an object per
 *   connection that the caller may tag, e.g. with the worker that answered on it).
 */
export function startLoad ({
  port, host = '127.0.0.1', path = '/', headers = {}, connections = 1, keepAlive = true,
  rate, durationS = Infinity, amount = Infinity, timeoutS = 10,
  classify = twoXX, onSettle, during,
}) {
  const startedAt = performance.now()
  const stopAt = startedAt + durationS * 1000
  const timeoutMs = timeoutS * 1000
  const r = { sent: 0, answered: 0, errors: 0, timeouts: 0, classes: {}, statuses: {}, errorKinds: {}, latencies: {}, lastResponseAt: 0, maxBacklog: 0 }
  const lanes = []
  let backlog = 0 // paced: requests due and waiting for a free connection
  const idle = [] // paced: lanes without a request, oldest first
  const open = new Set() // every live connection, to close them at the end
  let inflight = 0
  let scheduled = 0
  let nextConn = 0
  let stopping = false
  let finished = false
  let ticker = null
  let drainTimer = null
  let resolveDone, rejectDone
  const done = new Promise((resolve, reject) => { resolveDone = resolve; rejectDone = reject })

  function requestBytes (n) {
    const extra = typeof headers === 'function' ? headers(n) : headers
    let text = `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n`
    for (const [k, v] of Object.entries(extra)) text += `${k}: ${v}\r\n`
    if (!keepAlive) text += 'Connection: close\r\n'
    return Buffer.from(text + '\r\n', 'latin1')
  }

  function connect (lane) {
    const conn = { n: nextConn++, lane, socket: null, bytes: null, req: null, buf: null, head: null, reusable: keepAlive, timer: null, error: null }
    conn.bytes = requestBytes(conn.n)
    const socket = conn.socket = net.connect({ host, port, noDelay: true })
    open.add(conn)
    socket.on('data', (chunk) => onData(conn, chunk))
    socket.on('end', () => {
      // the server closed its side: no request goes out on it after this
      conn.reusable = false
      if (conn.req && conn.head?.untilClose) complete(conn, conn.buf ?? Buffer.alloc(0))
    })
    socket.on('error', (err) => { conn.error = err.code ?? err.message })
    socket.on('close', () => {
      conn.reusable = false
      open.delete(conn)
      clearTimeout(conn.timer)
      if (conn.req) settle(conn, null, conn.error ?? 'EOF')
    })
    lane.conn = conn
    return conn
  }

  /** Writes a request on the lane's connection (a new one if it has none to reuse); `dueAt`: the open loop's schedule. */
  function send (lane, dueAt) {
    const conn = lane.conn?.reusable ? lane.conn : connect(lane)
    const sentAt = performance.now()
    conn.req = { startAt: dueAt ?? sentAt, sentAt }
    conn.buf = null
    conn.head = null
    inflight++
    r.sent++
    if (timeoutMs) {
      if (conn.timer) conn.timer.refresh()
      else conn.timer = setTimeout(() => onTimeout(conn), timeoutMs)
    }
    conn.socket.write(conn.bytes)
  }

  function onTimeout (conn) {
    // the timer is re-armed at every send: it is due for the request in flight only
    if (!conn.req || performance.now() - conn.req.sentAt < timeoutMs - 1) return
    conn.reusable = false
    settle(conn, null, 'timeout')
    conn.socket.destroy()
  }

  function onData (conn, chunk) {
    if (!conn.req) return // nothing asked for on this connection: ignore
    let buf = conn.buf = conn.buf ? Buffer.concat([conn.buf, chunk]) : chunk
    if (!conn.head) {
      const end = buf.indexOf(HEAD_END)
      if (end < 0) {
        if (buf.length > MAX_HEAD) conn.socket.destroy(Object.assign(new Error('response head too large'), { code: 'HEAD_TOO_LARGE' }))
        return
      }
      const text = buf.toString('latin1', 0, end)
      const status = Number(text.slice(9, 12))
      buf = conn.buf = buf.subarray(end + 4)
      if (status >= 100 && status < 200) {
        // an interim answer: the response follows
        conn.buf = null
        if (buf.length) onData(conn, buf)
        return
      }
      const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(text)
      const close = /\r\nconnection:[^\r]*close/i.test(text) || (text.startsWith('HTTP/1.0') && !/\r\nconnection:[^\r]*keep-alive/i.test(text))
      if (close) conn.reusable = false
      const chunked = /\r\ntransfer-encoding:[^\r]*chunked/i.test(text)
      const empty = status === 204 || status === 304
      conn.head = { status, text, length: empty ? 0 : length ? Number(length[1]) : null, chunked: !empty && chunked, untilClose: !empty && !length && !chunked }
      if (conn.head.untilClose) conn.reusable = false
    }
    const head = conn.head
    if (head.length !== null) {
      if (buf.length >= head.length) complete(conn, buf.subarray(0, head.length))
    } else if (head.chunked) {
      const body = dechunk(buf)
      if (body === undefined) return
      if (body === null) return conn.socket.destroy(Object.assign(new Error('bad chunked body'), { code: 'BAD_CHUNK' }))
      complete(conn, body)
    }
  }

  function complete (conn, body) {
    const head = conn.head
    settle(conn, new Response(head.status, head.text, body), null)
    if (!conn.reusable) conn.socket.end()
  }

  function settle (conn, response, error) {
    const { req } = conn
    conn.req = null
    inflight--
    const at = performance.now()
    let cls = null
    if (response) {
      r.answered++
      r.lastResponseAt = at
      r.statuses[response.status] = (r.statuses[response.status] ?? 0) + 1
      cls = classify(response)
      r.classes[cls] = (r.classes[cls] ?? 0) + 1
      r.latencies[cls] ??= []
      r.latencies[cls].push(at - req.startAt)
    } else {
      r.errors++
      if (error === 'timeout') r.timeouts++
      r.errorKinds[error] = (r.errorKinds[error] ?? 0) + 1
    }
    onSettle?.({ class: cls, status: response?.status ?? null, error, startAt: req.startAt, at, response, connection: conn })
    next(conn.lane)
    if (stopping && inflight === 0 && backlog === 0) finish()
  }

  /** What a lane does once its request ended. */
  function next (lane) {
    if (lane.oneOff || finished) return
    if (rate) {
      if (backlog > 0) { backlog--; send(lane) } else idle.push(lane)
    } else if (!stopping && r.sent < amount && performance.now() < stopAt) {
      send(lane)
    } else {
      stop()
    }
  }

  /** Rate modes: every millisecond, sends the requests that fell due since the last tick. */
  function tick () {
    const now = performance.now()
    const total = Math.min(amount, Math.round(rate * durationS))
    const due = now >= stopAt ? total : Math.min(total, Math.floor(((now - startedAt) / 1000) * rate))
    for (; scheduled < due; scheduled++) {
      if (!keepAlive) send({ oneOff: true }, startedAt + (scheduled * 1000) / rate)
      else if (idle.length) send(idle.shift())
      else backlog++
    }
    if (backlog > r.maxBacklog) r.maxBacklog = backlog
    if (scheduled >= total) stop()
  }

  function stop () {
    if (!stopping) {
      stopping = true
      clearInterval(ticker)
      // what is under way still counts; a request in flight ends by its timeout, and
      // the backlog gets as long
      if (timeoutMs) drainTimer = setTimeout(finish, timeoutMs + 100)
      if (inflight === 0 && backlog === 0) finish()
    }
    return done
  }

  function finish () {
    if (finished) return
    finished = true
    clearTimeout(drainTimer)
    clearInterval(ticker)
    const unfinished = inflight + backlog
    for (const conn of open) {
      conn.req = null // not settled: counted as unfinished
      clearTimeout(conn.timer)
      conn.socket.destroy()
    }
    const settledAt = performance.now()
    Promise.resolve(duringPromise).then((duringResult) => resolveDone(result(settledAt, unfinished, duringResult)), rejectDone)
  }

  function result (settledAt, unfinished, duringResult) {
    const windowMs = (r.lastResponseAt || settledAt) - startedAt
    const latency = { ok: summarize([]) }
    for (const [cls, xs] of Object.entries(r.latencies)) latency[cls] = summarize(xs)
    const ok = r.classes.ok ?? 0
    return {
      mode: rate ? (keepAlive ? 'paced' : 'open') : 'closed',
      path,
      connections: rate && !keepAlive ? null : connections,
      keepAlive,
      rate: rate ?? null,
      amount: Number.isFinite(amount) ? amount : null,
      durationS: Number.isFinite(durationS) ? durationS : null,
      sent: r.sent,
      answered: r.answered,
      ok,
      errors: r.errors, // timeouts included
      timeouts: r.timeouts,
      failed: r.errors + r.answered - ok,
      unfinished,
      classes: r.classes,
      statuses: r.statuses,
      errorKinds: r.errorKinds,
      latency,
      startedAt,
      settledAt,
      windowMs,
      rps: ok / (windowMs / 1000),
      achievedRate: r.answered / (windowMs / 1000),
      maxBacklog: rate && keepAlive ? r.maxBacklog : null,
      duringResult,
    }
  }

  // a failing `during` fails the load once it has ended (not before: nothing is left running)
  const duringPromise = during ? Promise.resolve().then(() => during(startedAt)) : undefined
  duringPromise?.catch(() => {})

  if (rate) {
    for (let i = 0; i < (keepAlive ? connections : 0); i++) idle.push({})
    ticker = setInterval(tick, 1)
    tick()
  } else {
    for (let i = 0; i < connections && i < amount; i++) lanes.push({})
    if (lanes.length === 0) stop()
    for (const lane of lanes) send(lane)
  }
  return { done, stop }
}

/** One load, start to end. */
export function load (opts) {
  return startLoad(opts).done
}

/**
 * The body of a complete chunked message at the start of `buf`; undefined while
 * incomplete, null if malformed. Trailers are skipped.
 */
function dechunk (buf) {
  const parts = []
  let off = 0
  for (;;) {
    const eol = buf.indexOf('\r\n', off)
    if (eol < 0) return undefined
    const size = parseInt(buf.toString('latin1', off, eol), 16)
    if (Number.isNaN(size)) return null
    if (size === 0) {
      // the last chunk: an empty line ends it, after any trailers
      if (buf.length < eol + 4) return undefined
      if (buf[eol + 2] === 13 && buf[eol + 3] === 10) return Buffer.concat(parts)
      return buf.indexOf(HEAD_END, eol) < 0 ? undefined : Buffer.concat(parts)
    }
    const start = eol + 2
    if (buf.length < start + size + 2) return undefined
    parts.push(buf.subarray(start, start + size))
    off = start + size + 2
  }
}
