// The bench's Express /light and /heavy (routes.js) with prom-client metrics of the
// app's own, as an instrumented app has them: a counter and a histogram updated on
// every response, the registry exposed to cluster-run's /metrics in one line
// (exposeMetrics: asked by the primary at each scrape, nothing else meanwhile).
// BENCH_APP_METRICS=0 leaves prom-client out entirely (the bench's "plain app").
import express from 'express'
import { mountRoutes, listen } from './routes.js'

const app = express()
if (process.env.BENCH_APP_METRICS !== '0') {
  const { Counter, Histogram, register } = await import('prom-client')
  const { exposeMetrics } = await import('cluster-run/worker')
  exposeMetrics(register)
  const requests = new Counter({ name: 'bench_http_requests_total', help: 'responses by route and status', labelNames: ['route', 'status'] })
  const duration = new Histogram({
    name: 'bench_http_request_duration_seconds',
    help: 'time from the request to the end of its response',
    labelNames: ['route'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  })
  app.use((req, res, next) => {
    const t0 = process.hrtime.bigint()
    res.on('finish', () => {
      const route = req.route?.path ?? 'other'
      requests.inc({ route, status: res.statusCode })
      duration.observe({ route }, Number(process.hrtime.bigint() - t0) / 1e9)
    })
    next()
  })
}
mountRoutes(app)
listen(app)
