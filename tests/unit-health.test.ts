// /readyz's verdict from the status snapshot: pure.
import t from 'tap'
import { readiness } from '../lib/metrics/health.js'

const status = (state: 'starting' | 'running' | 'stopping' | 'stopped', ready: number, desired = 4) =>
  ({ state, workers: { desired, ready, starting: 0, draining: 0 } })

t.test('ready while running with at least minReadyWorkers ready', async (t) => {
  t.same(readiness(status('running', 4), 1), { ready: true, workers: { ready: 4, desired: 4, minReady: 1 } })
  t.equal(readiness(status('running', 1), 1).ready, true, 'one of four is enough by default')
  t.match(readiness(status('running', 1), 2), { ready: false, reason: '1 workers ready, fewer than minReadyWorkers (2)' })
  t.match(readiness(status('running', 0), 1), { ready: false })
})

t.test('never ready while starting or once a shutdown began', async (t) => {
  t.match(readiness(status('starting', 4), 1), { ready: false, reason: /^starting/ })
  t.match(readiness(status('stopping', 4), 1), { ready: false, reason: 'shutting down' })
  t.match(readiness(status('stopped', 0), 1), { ready: false, reason: 'shutting down' })
})
