// For the log table: node:http with pino writing to stdout. GET / answers after one
// log line of about 200 bytes; GET /burst?n=N writes N such lines; GET /quiet writes
// none. With LOG_RATE=n, worker 0 also writes n lines a second by itself.
import http from 'node:http'
import pino from 'pino'

const log = pino({ base: { pid: process.pid } })
const pad = 'x'.repeat(110) // with pino's own fields: a line of about 200 bytes
let n = 0

const rate = Number(process.env.LOG_RATE ?? 0)
if (rate > 0 && process.env.CLUSTER_RUN_WORKER_ID !== '1') {
  // every 10 ms, a hundredth of the rate
  setInterval(() => { for (let i = 0; i < rate / 100; i++) log.info({ n: n++, pad }) }, 10).unref()
}

http.createServer((req, res) => {
  if (req.url.startsWith('/burst')) {
    const count = Number(new URL(req.url, 'http://x').searchParams.get('n') ?? 1000)
    for (let i = 0; i < count; i++) log.info({ n: n++, pad })
  } else if (req.url !== '/quiet') {
    log.info({ n: n++, pad })
  }
  res.end('ok')
}).listen(Number(process.env.PORT ?? 3000), '127.0.0.1')
