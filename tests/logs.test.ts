// Log management: the workers' stdout and stderr captured by the primary, attributed,
// written whole (stdout, files), kept for `cluster-run logs`, rotated and reopened.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { startCli, watchCli, fixture, CLI, command, controlHome, type Cli } from './helpers/cli.js'
import { reapLater } from './helpers/reap.js'
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
  const metricsPort = await freePort()
  const dir = t.testdir({
    'cluster.config.json': JSON.stringify({ app: WRITER, workers: 3, metrics: { port: metricsPort }, log: { file: 'app.log', history: { lines: 5000, bytes: '16M' } } }),
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
  const viaLogs = await command(home, ['logs', '-n', '5000', '--json'])
  t.equal(viaLogs.code, 0)
  check('logs --json', jsonLines(viaLogs.stdout))
  // as a person reads them: each worker's lines behind its prefix, the events one line each
  const human = (await command(home, ['logs', '-n', '5000', '--events'])).stdout
  for (const slot of [0, 1, 2]) {
    t.match(human, new RegExp(`\\nw${slot} ${pids.get(slot)} \\| done ${slot}\\n`), `logs: worker ${slot}'s lines behind its prefix`)
    t.match(human, new RegExp(`\\] INFO \\(${pids.get(slot)}\\): worker\\.ready \\{"workerId":${slot},"generation":0,"startMs":\\d+\\}\\n`), `logs --events: worker ${slot}'s worker.ready on one line`)
  }
  // what status and /metrics count: every line and its bytes (without the newline)
  const status = JSON.parse((await command(home, ['status', '--json'])).stdout)
  const scrape = (await get(`http://127.0.0.1:${metricsPort}/metrics`)).body
  for (const slot of [0, 1, 2]) {
    const want = expected(slot, 300, true)
    const bytes = want.reduce((sum, [, text]) => sum + Buffer.byteLength(text), 0)
    t.match(status.members.find((m: any) => m.workerId === slot), { pid: pids.get(slot), outputLines: want.length, outputBytes: bytes }, `status: worker ${slot}'s lines and bytes`)
    t.match(scrape, new RegExp(`\\ncluster_run_worker_output_lines_total\\{worker="${slot}"\\} ${want.length}\\n`), `/metrics: worker ${slot}'s lines`)
    t.match(scrape, new RegExp(`\\ncluster_run_worker_output_bytes_total\\{worker="${slot}"\\} ${bytes}\\n`), `/metrics: worker ${slot}'s bytes`)
  }
  const table = (await command(home, ['status'])).stdout
  for (const slot of [0, 1, 2]) t.match(table, new RegExp(`\\n${slot}\\s+${pids.get(slot)}\\s.*\\s${expected(slot, 300, true).length.toLocaleString('en-US')}\\n`), `status: worker ${slot}'s LOG LINES`)
  t.match(scrape, /\ncluster_run_log_lines_missed_total 0\n/, 'no follower, nothing missed')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
  check('the file', jsonLines(fs.readFileSync(file, 'utf8')))
  t.equal(fs.statSync(file).mode & 0o777, 0o640, 'the file is not world-readable')
})

/** A cluster of the writer app from a config in a directory of its own; its control home too. */
async function writerCluster (t: Test, config: Record<string, unknown>, env: Record<string, string> = {}): Promise<{ cli: Cli, dir: string, home: string, url: string }> {
  const port = await freePort()
  const home = controlHome(t)
  const dir = t.testdir({ 'cluster.config.json': JSON.stringify({ app: WRITER, workers: 1, ...config }), logs: {} })
  const cli = startCli(t, [], { cwd: dir, env: { PORT: String(port), CLUSTER_RUN_HOME: home, ...env } })
  await cli.untilReady(config.workers as number ?? 1)
  return { cli, dir, home, url: `http://127.0.0.1:${port}` }
}

/**
 * Runs `cluster-run logs <args>` against the cluster. Its output is read while `read()`
 * has been called and `pause()` has not: paused, its pipe fills and its writes wait.
 */
function logsCommand (t: Test, home: string, args: string[]): { exited: Promise<number | null>, out: () => string, read: () => void, pause: () => void } {
  const child = spawn(process.execPath, [CLI, 'logs', ...args], { env: { ...process.env, CLUSTER_RUN_HOME: home }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let out = ''
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c }).pause()
  return {
    exited,
    out: () => out,
    read: () => { child.stdout.resume() },
    pause: () => { child.stdout.pause() },
  }
}

t.test('a worker that writes and calls process.exit() at once loses nothing', async (t) => {
  const { cli } = await writerCluster(t, { restartBackoff: { initialMs: 60_000 } }, { WRITE_LINES: '300', EXIT_AFTER: '1' })
  const first = cli.events.find((e) => e.event === 'worker.fork')!.pid
  await cli.waitFor('worker.exit', (e) => e.pid === first)
  const got = jsonLines(cli.stdout()).map(attributed).filter((l) => l !== undefined && l[3] === first)
  t.equal(got.length, expected(0, 300, false).length, 'every line it wrote before process.exit(), to the last')
  t.same(got.filter((l) => l![0] === 'stdout').at(-1)!.slice(0, 2), ['stdout', 'done 0'], 'its last stdout line too')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('a crash\'s worker.exit carries the worker\'s last lines of stderr', async (t) => {
  const { cli, url } = await writerCluster(t, {})
  await get(`${url}/crash`).catch(() => {})
  const exit = await cli.waitFor('worker.exit')
  t.match(exit, { reason: 'crashed', level: 50 })
  t.ok(exit.stderr.includes('about to crash in worker 0'), `its stderr: ${JSON.stringify(exit.stderr)}`)
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('rotation by size under load: every line once across the rotated files, by rename', async (t) => {
  const { cli, dir } = await writerCluster(t, { workers: 3, log: { file: 'app.log', rotate: { size: '256K', keep: 200 } } }, { WRITE_LINES: '300' })
  const file = path.join(dir, 'app.log')
  const files = (): string[] => fs.readdirSync(dir).filter((f) => f.startsWith('app.log')).map((f) => path.join(dir, f))
  // a file may be renamed between the listing and the reading: read as nothing then
  const read = (f: string): string => { try { return fs.readFileSync(f, 'utf8') } catch { return '' } }
  await until(() => ['0', '1', '2'].every((slot) => files().some((f) => read(f).includes(`"text":"done ${slot}"`))), 'every worker to have written everything', 60_000)
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
  t.ok(files().length > 3, `rotated: ${files().length} files`)
  const lines = files().flatMap((f) => jsonLines(fs.readFileSync(f, 'utf8')))
  for (const slot of [0, 1, 2]) {
    const got = lines.map(attributed).filter((l) => l !== undefined && l[2] === slot).map((l) => `${l![0]} ${l![1]}`).sort()
    t.same(got, expected(slot, 300, false).map(([stream, text]) => `${stream} ${text}`).sort(), `worker ${slot}: each line once, none lost`)
  }
  t.ok(fs.existsSync(file), 'the current file is at its path')
})

t.test('SIGUSR1 and `logs --reopen` reopen the file after an outside logrotate moved it; a path that cannot be opened keeps the old file', async (t) => {
  const { cli, dir, home, url } = await writerCluster(t, { log: { file: 'logs/app.log' } })
  const file = path.join(dir, 'logs', 'app.log')
  const say = async (text: string, where: string): Promise<void> => {
    await get(`${url}/say?text=${text}`)
    await until(() => fs.existsSync(where) && fs.readFileSync(where, 'utf8').includes(text), `"${text}" in ${path.basename(where)}`)
  }
  await say('before', file)
  fs.renameSync(file, `${file}.1`)
  cli.signal('SIGUSR1')
  await cli.waitFor('log.reopened')
  await say('after-signal', file)
  t.notMatch(fs.readFileSync(`${file}.1`, 'utf8'), 'after-signal', 'the moved file got nothing more')
  fs.renameSync(file, `${file}.2`)
  const reopen = logsCommand(t, home, ['--reopen'])
  reopen.read()
  t.equal(await reopen.exited, 0)
  t.match(reopen.out(), 'log files reopened')
  await say('after-command', file)
  // the directory itself moved away: the file cannot be opened again at its path
  fs.renameSync(path.join(dir, 'logs'), path.join(dir, 'logs-old'))
  cli.signal('SIGUSR1')
  t.match(await cli.waitFor('log.reopen-failed'), { level: 50, error: /ENOENT/ })
  await say('kept', path.join(dir, 'logs-old', 'app.log'))
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

/** A writer cluster and a `logs -f --json` follower of it, once the follower has its first line. */
async function followedCluster (t: Test): Promise<{ cli: Cli, home: string, url: string, follower: ReturnType<typeof logsCommand> }> {
  const { cli, home, url } = await writerCluster(t, {})
  const follower = logsCommand(t, home, ['-f', '-n', '0', '--json'])
  follower.read()
  await until(async () => {
    await get(`${url}/say?text=first`)
    return follower.out().includes('"text":"first"')
  }, 'the follower to follow')
  return { cli, home, url, follower }
}

t.test('a follower too slow to read is not waited for: it is told how many lines it missed; the cluster loses none', async (t) => {
  const { cli, home, url, follower } = await followedCluster(t)
  // its output is no longer read: its pipe fills, then the primary's socket to it
  follower.pause()
  for (let i = 0; i < 10; i++) await get(`${url}/burst?n=2000`)
  await until(() => cli.stdout().includes('"text":"burst 0 19999 ') || jsonLines(cli.stdout()).filter((l) => l.text?.startsWith('burst 0 1999 ')).length === 10, 'every burst line on the primary\'s stdout', 60_000)
  t.equal(jsonLines(cli.stdout()).filter((l) => l.text?.startsWith('burst ')).length, 20_000, 'the primary wrote all 20,000 lines')
  follower.read()
  await until(() => /\{"missed":\d+\}/.test(follower.out()), 'the follower to be told what it missed', 30_000)
  const missed = Number(/\{"missed":(\d+)\}/.exec(follower.out())![1])
  t.ok(missed > 0, `it missed ${missed} lines`)
  const status = JSON.parse((await command(home, ['status', '--json'])).stdout)
  t.ok(status.log.missedByFollowers >= missed, `status counts what followers missed (${status.log.missedByFollowers})`)
  t.match((await command(home, ['status'])).stdout, /\n[\d,]+ log lines missed by slow followers of `logs -f`\n/)
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
  t.equal(await follower.exited, 0, 'the follower ends with the cluster')
  t.match(follower.out(), /\{"stopped":true,"exitCode":0\}\n$/)
})

t.test('a follower that stalls for a moment misses nothing: 2,500 lines (about 900 KB) written while it is not read all reach it', async (t) => {
  const { cli, url, follower } = await followedCluster(t)
  // more than its pipe and its socket hold (a few hundred KB), less than the primary keeps for it (2 MiB)
  follower.pause()
  await get(`${url}/burst?n=2500`)
  await until(() => jsonLines(cli.stdout()).filter((l) => l.text?.startsWith('burst ')).length === 2500, 'every burst line on the primary\'s stdout', 60_000)
  follower.read()
  await until(() => follower.out().includes('"text":"burst 0 2499 '), 'the follower to get the last line', 30_000)
  const got = jsonLines(follower.out()).filter((l) => l.text?.startsWith('burst '))
  t.equal(got.length, 2500, 'every line')
  t.same(got.map((l) => Number(l.text.split(' ')[2])), Array.from({ length: 2500 }, (_, i) => i), 'in order, once each')
  t.notMatch(follower.out(), /"missed"/, 'no line missed')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
  t.equal(await follower.exited, 0)
})

t.test('GET /logs checks its query: an unknown parameter or format is a 400 naming it; format=entries gives each line with its source', async (t) => {
  const { cli, home, url } = await writerCluster(t, {})
  await get(`${url}/say?text=hello`)
  await until(async () => (await command(home, ['logs', '--json'])).stdout.includes('"text":"hello"'), 'the line in the history')
  const socket = cli.events.find((e) => e.event === 'primary.start')!.controlSocket as string
  const ask = (query: string): Promise<{ status: number, body: string }> => new Promise((resolve, reject) => {
    http.get({ socketPath: socket, path: `/logs?${query}` }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => resolve({ status: res.statusCode!, body }))
    }).on('error', reject)
  })
  const refused = async (query: string): Promise<{ status: number, error: string }> => {
    const { status, body } = await ask(query)
    return { status, error: (JSON.parse(body) as { error: string }).error }
  }
  t.match(await refused('format=xml'), { status: 400, error: /^format: expected entries or log/ })
  t.match(await refused('colour=1'), { status: 400, error: /^unknown parameter "colour"/ })
  const entries = (await ask('lines=1')).body.trim().split('\n').map((l) => JSON.parse(l))
  t.match(entries, [{ seq: Number, time: Number, workerId: 0, pid: Number, generation: 0, stream: 'stdout', line: 'hello' }])
  const log = (await ask('lines=1&format=log')).body
  t.match(JSON.parse(log), { event: 'worker.output', workerId: 0, stream: 'stdout', text: 'hello' })
  t.ok(log.endsWith('\n') && log.indexOf('\n') === log.length - 1, 'one line')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('a log file in a directory that does not exist: exit 73 naming the path, nothing forked', async (t) => {
  const dir = t.testdir({ 'cluster.config.json': JSON.stringify({ app: WRITER, workers: 1, log: { file: 'no/such/dir/app.log' } }) })
  const cli = startCli(t, [], { cwd: dir, env: { PORT: String(await freePort()) } })
  t.equal(await cli.exited, 73)
  t.match(cli.stderr(), `cluster-run: cannot open the log file ${path.join(dir, 'no/such/dir/app.log')}: ENOENT`)
  t.same(cli.workerPids(), [], 'no worker was forked')
})

t.test('log.workerOutput: inherit passes the workers\' output through untouched; pretty mode prefixes each line with its worker', async (t) => {
  const inherit = await writerCluster(t, { log: { workerOutput: 'inherit' } })
  await get(`${inherit.url}/say?text=raw-line`)
  await until(() => inherit.cli.stdout().includes('\nraw-line\n'), 'the line, as the app wrote it')
  t.notMatch(inherit.cli.stdout(), 'worker.output', 'not wrapped')
  inherit.cli.signal('SIGTERM')
  t.equal(await inherit.cli.exited, 0)

  const pretty = await (async () => {
    const port = await freePort()
    const cli = startCli(t, [WRITER, '-w', '1', '--pretty'], { env: { PORT: String(port) } })
    await until(() => cli.stdout().includes('worker.ready'), 'the worker to be ready')
    return { cli, url: `http://127.0.0.1:${port}` }
  })()
  await get(`${pretty.url}/say?text=pretty-line`)
  await until(() => /w0 \d+ \| pretty-line\n/.test(pretty.cli.stdout()), 'the line with its worker\'s prefix')
  t.match(pretty.cli.stdout(), /\] INFO \(cluster-run\/\d+\): primary\.start \{"workers":1,.*\}\n/, 'the events are pretty too, one line each')
  t.match(pretty.cli.stdout(), /\] INFO \(\d+\): worker\.ready \{"workerId":0,"generation":0,"startMs":\d+\}\n/)
  pretty.cli.signal('SIGTERM')
  t.equal(await pretty.cli.exited, 0)
})

t.test('on a terminal the log is pretty by default; log.pretty: false or a log file keeps it JSON there', async (t) => {
  const quote = (word: string): string => `'${word.replace(/'/g, "'\\''")}'`
  // The CLI under `script`, whose pseudo-terminal is the CLI's stdout; what it shows
  // comes out of script's stdout (\r\n line ends, colours).
  const onTerminal = async (config: Record<string, unknown>): Promise<{ shown: () => string, stop: () => Promise<void> }> => {
    const port = await freePort()
    const home = controlHome(t)
    const dir = t.testdir({ 'cluster.config.json': JSON.stringify({ app: WRITER, workers: 1, name: 'tty', ...config }) })
    const command = [process.execPath, CLI].map(quote).join(' ')
    const script = spawn('script', ['-qfec', command, '/dev/null'], { cwd: dir, env: { ...process.env, PORT: String(port), CLUSTER_RUN_HOME: home }, stdio: ['ignore', 'pipe', 'pipe'] })
    const cli = watchCli(t, script)
    // the CLI is script's child: killed with the file if the test fails
    reapLater(await until(() => Number(fs.readFileSync(`/proc/${script.pid}/task/${script.pid}/children`, 'utf8').trim()) || undefined, 'the CLI under script'))
    // eslint-disable-next-line no-control-regex
    const shown = (): string => cli.stdout().replace(/\x1b\[[0-9;]*m/g, '')
    await until(() => shown().includes('worker.ready'), 'the worker to be ready')
    await get(`http://127.0.0.1:${port}/say?text=tty-line`)
    await until(() => shown().includes('tty-line'), 'the line on the terminal')
    const stop = async (): Promise<void> => {
      const stopped = spawn(process.execPath, [CLI, 'stop', 'tty'], { env: { ...process.env, CLUSTER_RUN_HOME: home }, stdio: 'ignore' })
      t.equal(await new Promise((resolve) => stopped.on('exit', resolve)), 0, 'stopped through its socket')
      t.equal(await cli.exited, 0, 'script ends with the CLI\'s exit code')
    }
    return { shown, stop }
  }

  const pretty = await onTerminal({})
  t.match(pretty.shown(), /w0 \d+ \| tty-line\r?\n/, 'a terminal gets the worker\'s prefix')
  t.notMatch(pretty.shown(), '"event":', 'and no JSON')
  await pretty.stop()

  const json = await onTerminal({ log: { pretty: false } })
  t.match(json.shown(), /"event":"worker.output".*"text":"tty-line"/, 'log.pretty: false: JSON lines on a terminal too')
  await json.stop()

  const withFile = await onTerminal({ log: { file: 'app.log' } })
  t.match(withFile.shown(), /"event":"worker.output".*"text":"tty-line"/, 'a log file: JSON, on the terminal as in the file')
  await withFile.stop()
})
