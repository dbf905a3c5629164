// The typical hand-written node:cluster primary: one fork per CPU, re-fork on
// exit, nothing else (no drain, no signal handling). It prints JSON lines so the
// benchmark can see its workers: fork, listening, all-listening, exit.
//   node bench/bare-primary.js <app.js>      (BARE_WORKERS=<n> overrides the count)
import cluster from 'node:cluster'
import os from 'node:os'

const app = process.argv[2]
const workers = Number(process.env.BARE_WORKERS) || os.availableParallelism()

function print (event, fields = {}) {
  // performance.now() counts from this process's start
  process.stdout.write(JSON.stringify({ event, ...fields, sinceStartMs: Math.round(performance.now()) }) + '\n')
}

cluster.setupPrimary({ exec: app })

let announced = false
const listening = new Set()

cluster.on('listening', (worker) => listened(worker))
// an app that listens with reusePort says so itself (bench/apps/hello.js with REUSE_PORT=1)
cluster.on('message', (worker, message) => { if (message === 'listening-reuseport') listened(worker) })

function listened (worker) {
  listening.add(worker.id)
  print('listening', { id: worker.id, pid: worker.process.pid })
  if (!announced && listening.size >= workers) {
    announced = true
    print('all-listening', { workers })
  }
}

cluster.on('exit', (worker, code, signal) => {
  listening.delete(worker.id)
  print('exit', { id: worker.id, pid: worker.process.pid, code, signal })
  fork()
})

function fork () {
  const worker = cluster.fork()
  print('fork', { id: worker.id, pid: worker.process.pid })
}

for (let i = 0; i < workers; i++) fork()
