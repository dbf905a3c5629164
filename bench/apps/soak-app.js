// The app of `npm run soak`: node:http, answers at once. GET /grow?mb=N makes the
// worker keep N MiB (filled, so resident) until it exits: the soak calls it to
// push a worker over maxMemoryMb and have it recycled. Every response names the
// worker in `x-worker-pid`, so that the soak knows which worker held a connection
// whose request failed.
import http from 'node:http'

const kept = []

const server = http.createServer((req, res) => {
  res.setHeader('x-worker-pid', String(process.pid))
  if (req.url.startsWith('/grow')) {
    const mb = Math.max(1, Math.min(512, Number(new URL(req.url, 'http://x').searchParams.get('mb')) || 64))
    kept.push(Buffer.alloc(mb * 1024 * 1024, 1))
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ pid: process.pid, keptMb: kept.reduce((n, b) => n + b.length, 0) / 1024 / 1024 }))
    return
  }
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end('{"ok":true}')
})

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1')
