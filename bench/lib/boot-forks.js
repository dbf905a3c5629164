// Worker boot with and without cluster-run's preload, for the footprint table: a
// node:cluster primary that forks the app again and again, one worker at a time,
// alternating (plain, preload), (preload, plain), … and prints one JSON line per
// fork: fork → `online` and fork → `listening` as this primary sees them. Each
// worker is SIGKILLed once it listens, and the next fork waits for its exit.
//
//   node bench/lib/boot-forks.js <app.js> <preload URL> <forks per variant>   (PORT: the app's port)
//
// The preload variant gets what cluster-run gives its workers: `--import <preload>`
// and the launch environment (slot 0, a heartbeat every second, no request limit,
// not sticky); the plain one gets neither. One fork of each, not counted, warms
// the file cache first.
import cluster from 'node:cluster'
import { once } from 'node:events'

const [app, preloadUrl, perVariant] = [process.argv[2], process.argv[3], Number(process.argv[4] ?? 10)]

const VARIANTS = {
  plain: { execArgv: [], env: {} },
  preload: {
    execArgv: ['--import', preloadUrl],
    env: {
      CLUSTER_RUN_WORKER_ID: '0',
      CLUSTER_RUN_HEARTBEAT_MS: '1000',
      CLUSTER_RUN_REQUEST_LIMIT: '0',
      CLUSTER_RUN_SHUTDOWN_TIMEOUT_MS: '10000',
      CLUSTER_RUN_STICKY: '0',
    },
  },
}

function print (fields) {
  process.stdout.write(JSON.stringify(fields) + '\n')
}

async function forkOnce (variant) {
  const { execArgv, env } = VARIANTS[variant]
  cluster.setupPrimary({ exec: app, execArgv, silent: false })
  const t0 = performance.now()
  const worker = cluster.fork(env)
  print({ event: 'fork', variant, pid: worker.process.pid })
  let onlineMs = null
  worker.once('online', () => { onlineMs = performance.now() - t0 })
  const exited = once(worker, 'exit')
  let timer
  const listened = await Promise.race([
    once(worker, 'listening').then(() => performance.now() - t0),
    exited.then(() => { throw new Error(`${variant} worker exited before listening`) }),
    new Promise((resolve, reject) => { timer = setTimeout(() => reject(new Error(`${variant} worker: no listening within 10 s`)), 10_000) }),
  ]).finally(() => clearTimeout(timer))
  worker.process.kill('SIGKILL')
  await exited
  return { variant, pid: worker.process.pid, onlineMs, listeningMs: listened }
}

try {
  await forkOnce('plain')
  await forkOnce('preload')
  for (let i = 0; i < perVariant; i++) {
    const order = i % 2 === 0 ? ['plain', 'preload'] : ['preload', 'plain']
    for (const variant of order) print({ event: 'boot', pair: i, ...(await forkOnce(variant)) })
  }
  print({ event: 'done' })
} catch (err) {
  print({ event: 'error', message: err?.message ?? String(err) })
  for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL')
  process.exitCode = 1
}
