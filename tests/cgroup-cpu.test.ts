// workers: 'auto' inside a real 1-CPU cgroup v1 quota forks 1 worker.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { CLI, fixture } from './helpers/cli.js'
import { freePort, until } from './helpers/http.js'

const CPU_ROOT = '/sys/fs/cgroup/cpu'

t.test('a 1-CPU cfs quota: auto resolves to 1 worker, and 1 is forked', async (t) => {
  const group = path.join(CPU_ROOT, `cluster-run-test-${process.pid}`)
  fs.mkdirSync(group)
  const children: Array<ReturnType<typeof spawn>> = []
  t.teardown(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    // a cgroup can be removed only once it has no process left
    await until(() => fs.readFileSync(path.join(group, 'cgroup.procs'), 'utf8').trim() === '', 'the cgroup to empty', 5000)
    fs.rmdirSync(group)
  })
  fs.writeFileSync(path.join(group, 'cpu.cfs_period_us'), '100000')
  fs.writeFileSync(path.join(group, 'cpu.cfs_quota_us'), '100000')

  // The shell joins the group, then becomes the CLI: the primary and its workers run inside.
  const inGroup = (args: string[], env: Record<string, string> = {}) => track(spawn('sh', ['-c', `echo $$ > ${group}/cgroup.procs && exec "$0" "$@"`, process.execPath, CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  }))
  const track = (child: ReturnType<typeof spawn>) => { children.push(child); return child }

  const check = inGroup([fixture('apps/http.js'), '--check'])
  let out = ''
  check.stdout!.on('data', (c) => { out += c })
  const [code] = await once(check, 'exit')
  t.equal(code, 0)
  const resolved = JSON.parse(out)
  t.equal(resolved.workers, 1, 'auto is 1 inside the quota')
  t.match(resolved.workersReason, /cgroup v1/, 'the reason names the cgroup quota')

  const port = await freePort()
  const cli = inGroup([fixture('apps/http.js')], { PORT: String(port) })
  const events: any[] = []
  let buffer = ''
  cli.stdout!.setEncoding('utf8').on('data', (c: string) => {
    buffer += c
    const lines = buffer.split('\n')
    buffer = lines.pop()!
    for (const line of lines) if (line.startsWith('{')) events.push(JSON.parse(line))
  })
  await until(() => events.some((e) => e.event === 'worker.ready'), 'the worker to be ready')
  const start = events.find((e) => e.event === 'primary.start')
  t.match(start, { workers: 1, workersReason: /cgroup v1/ })
  cli.kill('SIGTERM')
  const [exitCode] = await once(cli, 'exit')
  t.equal(exitCode, 0)
  t.equal(events.filter((e) => e.event === 'worker.fork').length, 1, 'exactly 1 worker forked')
})
