// throng 5 as its README uses it (a worker function and a count), for the footprint
// table: the lightest of the cluster managers on npm. It prints the JSON lines of
// bare-primary.js (fork, listening, all-listening) so the benchmark sees its workers.
//   node bench/throng-primary.js <app.js>      (BARE_WORKERS=<n> sets the count)
import cluster from 'node:cluster'
import os from 'node:os'
import { pathToFileURL } from 'node:url'
import throng from 'throng'

const app = process.argv[2]
const count = Number(process.env.BARE_WORKERS) || os.availableParallelism()

function print (event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields, sinceStartMs: Math.round(performance.now()) }) + '\n')
}

function master () {
  const listening = new Set()
  let announced = false
  cluster.on('fork', (worker) => print('fork', { id: worker.id, pid: worker.process.pid }))
  cluster.on('listening', (worker) => {
    listening.add(worker.id)
    print('listening', { id: worker.id, pid: worker.process.pid })
    if (!announced && listening.size >= count) {
      announced = true
      print('all-listening', { workers: count })
    }
  })
}

throng({ master, worker: () => import(pathToFileURL(app).href), count })
