// Log management: the workers' stdout and stderr captured by the primary, attributed,
// written whole (stdout, files), kept for `cluster-run logs`, rotated and reopened.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { startCli, fixture, CLI, controlHome, type Cli } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'

const WRITER = fixture('apps/writer.js')

/** Every line of the primary's stdout, parsed (each must be JSON). */
function jsonLines (text: string): Array<Record<string, any>> {
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line))
}

/** What a writer worker wrote, line by line, as it wrote it: [stream, text]. */
function expected (slot: number, count: number, big: boolean): Array<['stdout' | 'stderr', string]> {
  const sizes = [0, 10, 100, 1000, 3500, 10_000, 70_000]
  const lines: Array<['stdout' | 'stderr', string]> = []
  for (let i = 0; i < count; i++) {
    const pad = 'x'.repeat(sizes[i % sizes.length])
    if (i % 3 === 0) lines.push(['stdout', JSON.stringify({ slot: String(slot), i, pad })])
    else if (i % 3 === 1) lines.push(['stdout', `plain ${slot} ${i} ${pad}`])
    else lines.push(['stderr', `err ${slot} ${i} ${pad}`])
  }
  if (big) lines.push(['stdout', `big ${slot} ${'x'.repeat(1024 * 1024)}`])
  lines.push(['stdout', `done ${slot}`])
  return lines
}

/** A worker line as the primary wrote it, back to [stream, text, workerId, pid]: JSON objects got fields put first, other lines became worker.output. */
function attributed (line: Record<string, any>): ['stdout' | 'stderr', string, number, number] | undefined {
  if (line.event === 'worker.output') return [line.stream, line.text, line.workerId, line.pid]
  if (line.event !== undefined || line.workerId === undefined) return undefined
  const { workerId, generation: _g, ...rest } = line
  // the app's JSON had no pid: the primary added the worker's
  const { pid, ...app } = rest
  return ['stdout', JSON.stringify(app), workerId, pid]
}

async function untilDone (cli: Cli, slots: number[]): Promise<void> {
  await until(() => slots.every((slot) => cli.stdout().includes(`"text":"done ${slot}"`)), 'every worker to have written everything', 60_000)
}

t.test('several workers writing at once, lines of 0 B to 1 MiB: every line whole, once, attributed, on stdout, in the file and through `logs`', async (t) => {
  const port = await freePort()
  const home = controlHome(t)
  const dir = t.testdir({
    'cluster.config.json': JSON.stringify({ app: WRITER, workers: 3, log: { file: 'app.log', history: { lines: 5000, bytes: '16M' } } }),
  })
  const file = path.join(dir, 'app.log')
  const cli = startCli(t, [], { cwd: dir, env: { PORT: String(port), WRITE_LINES: '300', WRITE_BIG: '1', CLUSTER_RUN_HOME: home } })
  await cli.untilReady(3)
  await untilDone(cli, [0, 1, 2])
  const pids = new Map(cli.events.filter((e) => e.event === 'worker.fork').map((e) => [e.workerId as number, e.pid as number]))
  const check = (where: string, lines: Array<Record<string, any>>): void => {
    for (const slot of [0, 1, 2]) {
      const got = lines.map(attributed).filter((l) => l !== undefined && l[2] === slot)
      const want = expected(slot, 300, true)
      t.equal(got.length, want.length, `${where}: worker ${slot} wrote ${want.length} lines`)
      t.ok(got.every((l) => l![3] === pids.get(slot)), `${where}: each attributed to worker ${slot}'s pid`)
      // the order of a worker's own stream is kept; stdout and stderr are two pipes
      for (const stream of ['stdout', 'stderr'] as const) {
        t.same(got.filter((l) => l![0] === stream).map((l) => l![1]), want.filter((l) => l[0] === stream).map((l) => l[1]), `${where}: worker ${slot}'s ${stream}, line by line`)
      }
    }
  }
  check('stdout', jsonLines(cli.stdout()))
  const viaLogs = spawn(process.execPath, [CLI, 'logs', '-n', '5000', '--json'], { env: { ...process.env, CLUSTER_RUN_HOME: home } })
  let logsOut = ''
  viaLogs.stdout.setEncoding('utf8').on('data', (c: string) => { logsOut += c })
  const code = await new Promise((resolve) => viaLogs.on('exit', resolve))
  t.equal(code, 0)
  check('logs --json', jsonLines(logsOut))
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
  check('the file', jsonLines(fs.readFileSync(file, 'utf8')))
  t.equal(fs.statSync(file).mode & 0o777, 0o640, 'the file is not world-readable')
})
