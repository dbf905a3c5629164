// A hello-world node:http app: `node bench/apps/hello.js` (PORT=3000). The footprint
// table measures on it what cluster-run adds to a worker's boot and to its CPU time
// per request, with nothing of the app's own in the way. The body names the process
// (the scheduling table counts who answered); REUSE_PORT=1 listens with Node's own
// `reusePort` (a bare primary's reuseport).
import http from 'node:http'

const body = Buffer.from(`hello ${process.pid}\n`)

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length })
  res.end(body)
})

server.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1', reusePort: process.env.REUSE_PORT === '1' }, () => {
  // a worker that listens with reusePort binds its own socket: Node's cluster tells its primary nothing
  if (process.env.REUSE_PORT === '1') process.send?.('listening-reuseport')
})
