// The guard in a plain node process: probes and shedding work without
// cluster-run, overload events go to stdout through the default pino logger,
// and the guard's timers never keep the process alive.
import t from 'tap'
import { runTs } from './helpers/node.js'
import { FILE_TIMEOUT_MS } from './helpers/cli.js'

t.setTimeout(FILE_TIMEOUT_MS)

t.test('a plain node app exits on its own and logs overload events as JSON on stdout', async (t) => {
  // killed at a deadline: if a timer kept the process alive, fail instead of hanging (generous:
  // on a busy machine tsx alone may take seconds to start; once done, the app exits within ms)
  const { code, signal, stdout, stderr } = await runTs('fixtures/middleware/plain-app.ts', [], 60_000)

  t.equal(signal, null, 'the process was not killed at the deadline: nothing kept it alive')
  t.equal(code, 0, stderr)
  const summary = JSON.parse(stderr.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>
  t.match(summary, { live: 200, ready: 200, shed: 503, served: 200, stats: { shed: 1, overloadEpisodes: 1, state: 'ok' } })

  const lines = stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>)
  t.equal(lines.length, 2, 'one line as the episode starts, one as it ends, none per request')
  t.match(lines[0], { name: 'cluster-run', level: 40, event: 'overload.start', reason: 'maxInFlight', value: 2, limit: 1, msg: 'overload started' })
  t.match(lines[1], { name: 'cluster-run', level: 30, event: 'overload.end', reason: 'maxInFlight', shed: 1, durationMs: Number, msg: 'overload ended' })
})
