// workers: 'auto' inside a real 1-CPU cgroup v1 quota forks 1 worker.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { CLI, fixture, watchCli, controlHome, FILE_TIMEOUT_MS } from './helpers/cli.js'
import { freePort, until } from './helpers/http.js'

t.setTimeout(FILE_TIMEOUT_MS)

const CPU_ROOT = '/sys/fs/cgroup/cpu'

t.test('a 1-CPU cfs quota: auto resolves to 1 worker, and 1 is forked', async (t) => {
  const group = path.join(CPU_ROOT, `cluster-run-test-${process.pid}`)
  fs.mkdirSync(group)
  t.teardown(async () => {
    // a cgroup can be removed only once it has no process left; this runs after
    // the CLIs' own teardowns (tap runs the last registered first), which kill
    // whatever they left behind
    await until(() => fs.readFileSync(path.join(group, 'cgroup.procs'), 'utf8').trim() === '', 'the cgroup to empty')
    fs.rmdirSync(group)
  })
  fs.writeFileSync(path.join(group, 'cpu.cfs_period_us'), '100000')
  fs.writeFileSync(path.join(group, 'cpu.cfs_quota_us'), '100000')

  // The shell joins the group, then becomes the CLI: the primary and its workers run inside.
  const inGroup = (args: string[], env: Record<string, string> = {}) => watchCli(t, spawn('sh', ['-c', `echo $$ > ${group}/cgroup.procs && exec "$0" "$@"`, process.execPath, CLI, ...args], {
    env: { ...process.env, CLUSTER_RUN_HOME: controlHome(t), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }))

  const check = inGroup([fixture('apps/http.js'), '--check'])
  t.equal(await check.exited, 0)
  const resolved = JSON.parse(check.stdout())
  t.equal(resolved.workers, 1, 'auto is 1 inside the quota')
  t.match(resolved.workersReason, /cgroup v1/, 'the reason names the cgroup quota')

  const port = await freePort()
  const cli = inGroup([fixture('apps/http.js')], { PORT: String(port) })
  await cli.waitFor('worker.ready')
  const start = cli.events.find((e) => e.event === 'primary.start')
  t.match(start, { workers: 1, workersReason: /cgroup v1/ })
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
  t.equal(cli.events.filter((e) => e.event === 'worker.fork').length, 1, 'exactly 1 worker forked')
})
