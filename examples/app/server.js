// A plain node:http app: it knows nothing of cluster-run and runs the same under
// `node server.js` (one process) and `cluster-run server.js` (one per CPU).
import http from 'node:http'

const port = Number(process.env.PORT ?? 3000)
// No host: every interface, as a container needs (the Service sends to the pod IP).
const host = process.env.HOST || undefined

http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ hello: 'world', pid: process.pid, worker: process.env.CLUSTER_RUN_WORKER_ID ?? null }))
}).listen(port, host, () => {
  console.log(`listening on ${host ?? '*'}:${port}`)
})
