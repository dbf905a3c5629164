// A ws WebSocket app for the real-time table: on connection it says {hello: pid};
// every message {n} is answered with {pid, echo: n} after DELAY_MS (default 50), so
// that some exchanges are in flight whenever a drain starts. WS_DRAIN=helper closes
// the clients on drain with drainWebSockets(); without it the app registers nothing
// and cluster-run's default drain of upgraded connections applies.
import http from 'node:http'
import { WebSocketServer } from 'ws'
import { drainWebSockets } from 'cluster-run/worker'

const delayMs = Number(process.env.DELAY_MS ?? 50)
const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ pid: process.pid }))
})
const wss = new WebSocketServer({ server })
if (process.env.WS_DRAIN === 'helper') drainWebSockets(wss, { graceMs: 5000 })
wss.on('connection', (ws) => {
  ws.send(JSON.stringify({ hello: process.pid }))
  ws.on('message', (data) => {
    let n = null
    try { n = JSON.parse(String(data)).n } catch {}
    setTimeout(() => ws.send(JSON.stringify({ pid: process.pid, echo: n })), delayMs)
  })
})
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1')
