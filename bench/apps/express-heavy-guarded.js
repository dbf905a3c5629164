// The same app with cluster-run's overload guard in front of every route. The
// package imports itself by name through its "exports" (needs `npm run build`).
import express from 'express'
import { expressGuard } from 'cluster-run/middleware'
import { mountRoutes, listen } from './routes.js'

// Limits as documented in bench/README.md; overridable for experiments.
// BENCH_GUARD_ELU (a share of the time, e.g. 0.9) adds maxEventLoopUtilization.
export const GUARD = {
  maxEventLoopDelayMs: Number(process.env.BENCH_GUARD_LAG_MS ?? 150),
  maxInFlight: Number(process.env.BENCH_GUARD_INFLIGHT ?? 8),
  ...(process.env.BENCH_GUARD_ELU ? { maxEventLoopUtilization: Number(process.env.BENCH_GUARD_ELU) } : {}),
}

const app = express()
app.use(expressGuard(GUARD))
mountRoutes(app)
listen(app)
