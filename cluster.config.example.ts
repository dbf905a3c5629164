// Every option of cluster-run, with its default. Try it:
//   node_modules/.bin/cluster-run --config cluster.config.example.ts
// then `curl localhost:3000`; Ctrl-C drains and stops.
import { defineConfig } from 'cluster-run'

export default defineConfig({
  // the app's entry file (.js .mjs .cjs .ts .mts .cts); the CLI's first argument overrides it
  app: './fixtures/apps/http.js',
  // arguments for the app (its process.argv.slice(2)); the CLI's `-- args` override them
  args: [],
  // extra node flags for the workers, e.g. ['--max-old-space-size=512']
  execArgv: [],
  // extra environment variables for the workers
  env: { PORT: process.env.PORT ?? '3000' },
  // directory the app is resolved from and the workers run in (default: the current one)
  // cwd: '.',
  // the name for `cluster-run ls | status | reload | scale | stop` (default: the package's name, else the entry's); flag -n
  // name: 'shop',
  // the control socket: false turns it off, a path sets it (default: <dir>/<name>.sock, dir from CLUSTER_RUN_HOME,
  // else $XDG_RUNTIME_DIR/cluster-run, else ~/.cluster-run)
  // controlSocket: false,
  // a number, or 'auto': the CPUs this process may use (affinity and cgroup quota); env CLUSTER_RUN_WORKERS, flag -w
  workers: 'auto',
  // 'rr': the primary hands out connections in turn; 'none': the kernel does; 'sticky': the primary keeps each client
  // on its slot (by rendezvous hashing of its address or, behind a proxy, of a header)
  schedulingPolicy: 'rr',
  sticky: { by: 'address' }, // or { by: { header: 'x-forwarded-for' } }
  // 'listening': ready when the app listens; 'message': ready when it calls ready() from 'cluster-run/worker'
  readiness: 'listening',
  // restart delay of a crashed slot: initialMs × factor^(n-1), capped at maxMs, ± jitter; reset after resetAfterMs up
  restartBackoff: { initialMs: 100, maxMs: 15_000, factor: 2, jitter: 0.1, resetAfterMs: 30_000 },
  // more crashes than this (all workers together) within windowMs stop the cluster with exit 1 (3 at boot)
  maxCrashRate: { crashes: 5, windowMs: 60_000 },
  // a worker not ready this long after its fork is killed and counted as a crash
  readyTimeoutMs: 10_000,
  // a draining worker (shutdown, reload, scale-down, recycle) still alive after this is killed
  shutdownTimeoutMs: 10_000,
  // on SIGTERM: readiness 503 at once, the workers serve this long more, then drain (behind a load balancer)
  shutdownDelayMs: 0,
  // the primary's /readyz answers 200 while at least this many workers are ready
  minReadyWorkers: 1,
  // Prometheus /metrics, /healthz and /readyz from the primary on a port of its own (off unless set); flag --metrics-port
  // metrics: { port: 9100, host: '127.0.0.1', timeoutMs: 1000 },
  // a worker whose event loop sent no heartbeat for this long is killed as hung (0: off)
  heartbeatTimeoutMs: 30_000,
  // replace a worker whose RSS passes this many MiB, gracefully (0: off)
  maxMemoryMb: 0,
  // replace a worker after this many requests, gracefully (0: off)
  maxRequests: 0,
  // up to this many more requests, drawn per worker, so workers do not recycle together
  maxRequestsJitter: 0,
  // a worker exiting with one of these codes means the app cannot boot: stop at once, exit 3
  stopOnExitCodes: [],
  // the log: level and human-readable output (flags --log-level, --pretty; env CLUSTER_RUN_LOG_LEVEL);
  // the workers' stdout and stderr captured and attributed ('inherit': passed through untouched);
  // a file beside or instead of stdout, rotated by size or interval (SIGUSR1 reopens it);
  // the last lines kept for `cluster-run logs`
  log: {
    level: 'info',
    // pretty: false, // JSON lines even on a terminal (the default there: pretty, unless a file is written)
    workerOutput: 'capture',
    stdout: true,
    // file: 'logs/app.log', errorFile: 'logs/error.log',
    rotate: { keep: 5 }, // size: '10M', interval: '1d'
    history: { lines: 1000, bytes: '1M' },
  },
  // hooks, run in the primary; one that throws is logged as hook.error and ignored
  onWorkerFork: ({ workerId, pid }) => {},
  onWorkerReady: ({ workerId, pid }) => {},
  onWorkerExit: ({ workerId, pid, code, signal, reason }) => {},
  onReload: ({ generation }) => {},
  onShutdown: ({ signal }) => {},
  // once, before any fork, never on reload (e.g. @socket.io/cluster-adapter's setupPrimary())
  onPrimaryStart: () => {},
})
