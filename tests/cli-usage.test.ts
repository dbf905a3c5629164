// The real CLI on its usage and configuration paths: help, version, usage errors
// (exit 64), invalid configuration (exit 78, nothing forked), --check, the precedence
// of config file < environment < flags, and a config file found from cwd.
import t, { type Test } from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { startCli, watchCli, controlHome, fixture, configWaitingFor, CLI, ROOT, type Cli, FILE_TIMEOUT_MS } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'

t.setTimeout(FILE_TIMEOUT_MS)

const HTTP_APP = fixture('apps/http.js')
const VERSION: string = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version

/** No CLUSTER_RUN_* from the environment the tests run in. */
const CLEAN_ENV = {
  CLUSTER_RUN_WORKERS: undefined,
  CLUSTER_RUN_SCHEDULING_POLICY: undefined,
  NODE_CLUSTER_SCHED_POLICY: undefined,
  CLUSTER_RUN_LOG_LEVEL: undefined,
}

async function run (t: Test, args: string[], options: { env?: Record<string, string | undefined>, cwd?: string } = {}): Promise<{ cli: Cli, code: number | string }> {
  const cli = startCli(t, args, { cwd: options.cwd, env: { ...CLEAN_ENV, ...options.env } })
  const code = await cli.exited
  return { cli, code }
}

/** Nothing was forked, and nothing answers on `port`. */
async function nothingStarted (t: Test, cli: Cli, port?: number): Promise<void> {
  t.same(cli.workerPids(), [], 'no worker was forked')
  t.notOk(cli.events.some((e) => e.event === 'primary.start'), 'the cluster did not start')
  if (port !== undefined) {
    await t.rejects(get(`http://127.0.0.1:${port}/`), { code: 'ECONNREFUSED' }, 'nothing listens')
  }
}

t.test('--help prints the usage and exits 0', async (t) => {
  for (const flag of ['--help', '-h']) {
    const { cli, code } = await run(t, [flag, HTTP_APP, '-w', '1'])
    t.equal(code, 0, `${flag}: exit 0`)
    t.match(cli.stdout(), /^Usage: cluster-run \[entry\] \[options\]/, `${flag}: the usage line`)
    for (const option of ['--config', '--workers', '--name', '--scheduling-policy', '--metrics-port', '--log-level', '--check', '--version', 'cluster-run status', 'Exit codes']) {
      t.match(cli.stdout(), option, `${flag}: mentions ${option}`)
    }
    t.equal(cli.stderr(), '', `${flag}: nothing on stderr`)
    t.same(cli.workerPids(), [], `${flag}: nothing forked`)
  }
})

t.test('--version prints the version of package.json', async (t) => {
  for (const flag of ['--version', '-v']) {
    const { cli, code } = await run(t, [flag])
    t.equal(code, 0, `${flag}: exit 0`)
    t.equal(cli.stdout(), `${VERSION}\n`, `${flag}: ${VERSION}`)
  }
})

t.test('an unknown flag: exit 64 naming it, nothing forked', async (t) => {
  const port = await freePort()
  const { cli, code } = await run(t, [HTTP_APP, '-w', '1', '--wrokers', '2'], { env: { PORT: String(port) } })
  t.equal(code, 64)
  t.match(cli.stderr(), /^cluster-run: unknown option --wrokers: did you mean --workers\?/)
  t.match(cli.stderr(), 'Run "cluster-run --help" for usage.')
  await nothingStarted(t, cli, port)
  const singular = await run(t, ['--worker', '2'])
  t.equal(singular.code, 64)
  t.match(singular.cli.stderr(), /^cluster-run: unknown option --worker: did you mean --workers\?/, 'Node\'s parser message is not shown raw')
  const command = await run(t, ['status', '--jsno'])
  t.equal(command.code, 64)
  t.match(command.cli.stderr(), /^cluster-run: status: unknown option --jsno: did you mean --json\?/)
})

t.test('a first argument that is a word and no file: an unknown command (exit 64), not a missing entry', async (t) => {
  const cwd = t.testdir({ 'package.json': JSON.stringify({ name: 'p' }) })
  const typo = await run(t, ['statsu'], { cwd })
  t.equal(typo.code, 64)
  t.match(typo.cli.stderr(), /^cluster-run: unknown command "statsu": did you mean "status"\? \(commands: ls, status, top, reload, scale, stop/)
  const pm2 = await run(t, ['monit'], { cwd })
  t.equal(pm2.code, 64)
  t.match(pm2.cli.stderr(), 'unknown command "monit": use "cluster-run top"')
  const other = await run(t, ['frobnicate', '--json'], { cwd })
  t.equal(other.code, 64, 'whatever flags follow')
  t.match(other.cli.stderr(), /unknown command "frobnicate" \(commands: /)
  const file = await run(t, ['server', '--check'], { cwd: t.testdir({ server: 'require("http")' }) })
  t.equal(file.code, 0, 'an entry file without an extension still runs')
})

t.test('a flag without its value and a second positional: exit 64', async (t) => {
  const missing = await run(t, [HTTP_APP, '--workers'])
  t.equal(missing.code, 64, '--workers without a value')
  t.match(missing.cli.stderr(), '--workers')
  const extra = await run(t, [HTTP_APP, 'extra-arg'])
  t.equal(extra.code, 64, 'a second positional')
  t.match(extra.cli.stderr(), 'Unexpected argument "extra-arg"')
  t.same([...missing.cli.workerPids(), ...extra.cli.workerPids()], [])
})

t.test('a config with several bad values: exit 78, every key named, nothing forked or listening', async (t) => {
  const port = await freePort()
  const cwd = t.testdir({
    '.clusterrc.json': JSON.stringify({
      app: HTTP_APP,
      workers: 0,
      schedulingPolicy: 'fifo',
      restartBackof: {},
      env: { PORT: String(port) },
    }),
  })
  const file = path.join(cwd, '.clusterrc.json')
  const { cli, code } = await run(t, [], { cwd })
  t.equal(code, 78)
  const stderr = cli.stderr()
  t.match(stderr, /^cluster-run: Invalid configuration\n/)
  t.match(stderr, `  - workers: Too small: expected number to be >0 (given: 0, from ${file})`)
  t.match(stderr, `  - schedulingPolicy: Invalid option: expected one of "rr"|"none"|"reuseport"|"sticky" (given: "fifo", from ${file})`)
  t.match(stderr, `  - restartBackof: unknown key, did you mean "restartBackoff"? (given: {}, from ${file})`)
  t.equal(stderr.split('\n').filter((l) => l.startsWith('  - ')).length, 3, 'one line per bad key')
  t.equal(cli.stdout(), '', 'no event was logged')
  await nothingStarted(t, cli, port)
})

t.test('a missing entry file: exit 78 naming it', async (t) => {
  const cwd = t.testdir({})
  const { cli, code } = await run(t, ['no-such-server.js', '-w', '1'], { cwd })
  t.equal(code, 78)
  t.match(cli.stderr(), `app: the entry file does not exist (given: "no-such-server.js", resolved to ${path.join(cwd, 'no-such-server.js')}, from command line)`)
  await nothingStarted(t, cli)
})

t.test('no app at all: exit 78', async (t) => {
  const cwd = t.testdir({ 'package.json': JSON.stringify({ name: 'no-app' }) })
  const { cli, code } = await run(t, ['-w', '1'], { cwd })
  t.equal(code, 78)
  t.match(cli.stderr(), 'cluster-run: No app to run')
  t.match(cli.stderr(), `app: expected the entry file, as the first argument or the "app" key of a config file; ${cwd} has no package.json "main" and no index.js`)
  await nothingStarted(t, cli)
})

t.test('no entry and no config: the package\'s "main" runs, as `node .` would, and --check says so', async (t) => {
  const withMain = t.testdir({ 'package.json': JSON.stringify({ name: 'p', main: 'lib/server' }), lib: { 'server.js': '' } })
  const main = await run(t, ['--check'], { cwd: withMain })
  t.equal(main.code, 0)
  t.match(JSON.parse(main.cli.stdout()), { app: path.join(withMain, 'lib/server.js'), appSource: 'package.json "main" (as `node .` runs)' })
  const index = t.testdir({ 'package.json': JSON.stringify({ name: 'p' }), 'index.js': '' })
  t.match(JSON.parse((await run(t, ['--check'], { cwd: index })).cli.stdout()), { app: path.join(index, 'index.js') }, 'no "main": index.js')
  const entry = await run(t, [HTTP_APP, '--check'], { cwd: withMain })
  t.match(JSON.parse(entry.cli.stdout()), { app: HTTP_APP, appSource: 'command line' }, 'an entry given wins')
})

t.test('two config files in one folder: the one used and the ones ignored are named, in --check and as config.warning', async (t) => {
  const port = await freePort()
  const cwd = t.testdir({
    '.clusterrc.yaml': `app: ${HTTP_APP}\nworkers: 1\nenv:\n  PORT: ${port}\n  DEBUG: true\n`,
    'cluster.config.json': '{ "app": "other.js" }',
    'package.json': JSON.stringify({ name: 'p', cluster: { app: HTTP_APP, workers: 3 } }),
  })
  const check = await run(t, ['--check'], { cwd })
  const config = JSON.parse(check.cli.stdout())
  t.match(config, { configFile: path.join(cwd, 'package.json'), workers: 3 }, 'package.json#cluster comes first')
  t.match(config.warnings, [{ key: 'configFile', used: path.join(cwd, 'package.json'), ignored: [path.join(cwd, '.clusterrc.yaml'), path.join(cwd, 'cluster.config.json')] }])
  fs.writeFileSync(path.join(cwd, 'package.json'), JSON.stringify({ name: 'p' }))
  const cli = startCli(t, [], { cwd, env: CLEAN_ENV })
  await cli.untilReady(1)
  t.match(cli.events.find((e) => e.event === 'config.warning'), { level: 40, key: 'configFile', used: path.join(cwd, '.clusterrc.yaml'), ignored: [path.join(cwd, 'cluster.config.json')] })
  t.same(JSON.parse((await get(`http://127.0.0.1:${port}/`)).body).workerId, '0', 'env values that are numbers and booleans became strings')
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('CLUSTER_RUN_WORKERS=abc: exit 78 naming workers and the environment', async (t) => {
  const port = await freePort()
  const { cli, code } = await run(t, [HTTP_APP], { env: { CLUSTER_RUN_WORKERS: 'abc', PORT: String(port) } })
  t.equal(code, 78)
  t.match(cli.stderr(), /- workers: .*\(given: "abc", from environment\)/)
  await nothingStarted(t, cli, port)
})

t.test('--check prints the resolved config and forks nothing', async (t) => {
  const cwd = t.testdir({
    'server.js': '// never run\n',
    '.clusterrc.yaml': 'app: server.js\nargs: [--x]\nrestartBackoff:\n  maxMs: 500\n',
  })
  const { cli, code } = await run(t, ['--check'], { cwd })
  t.equal(code, 0, cli.stderr())
  const config = JSON.parse(cli.stdout())
  t.match(config, {
    app: path.join(cwd, 'server.js'),
    cwd,
    args: ['--x'],
    workers: Number,
    workersReason: /^auto: /,
    schedulingPolicy: 'rr',
    restartBackoff: { initialMs: 100, maxMs: 500, factor: 2 },
    log: { level: 'info' },
    configFile: path.join(cwd, '.clusterrc.yaml'),
  })
  t.notOk('pretty' in config.log, 'pretty unset: the primary decides by its stdout')
  t.ok(Number.isInteger(config.workers) && config.workers >= 1, `workers resolved to a number (${config.workers})`)
  t.ok(path.isAbsolute(config.app), 'app is absolute')
  t.equal(cli.events.length, 0, 'no event: nothing started')
  t.same(cli.workerPids(), [])
})

t.test('precedence with --check: config file < environment < flag', async (t) => {
  const cwd = t.testdir({
    'server.js': '// never run\n',
    'cluster.config.mjs': "export default { app: 'server.js', workers: 3, schedulingPolicy: 'none' }\n",
  })
  const file = path.join(cwd, 'cluster.config.mjs')
  const check = async (args: string[], env: Record<string, string> = {}): Promise<Record<string, any>> => {
    const { cli, code } = await run(t, ['--check', ...args], { cwd, env })
    t.equal(code, 0, cli.stderr())
    return JSON.parse(cli.stdout())
  }
  t.match(await check([]), { workers: 3, workersReason: `set by ${file}`, schedulingPolicy: 'none' }, 'the config file')
  t.match(await check([], { CLUSTER_RUN_WORKERS: '2' }), { workers: 2, workersReason: 'set by environment', schedulingPolicy: 'none' }, 'the environment over the file')
  t.match(await check(['-w', '1'], { CLUSTER_RUN_WORKERS: '2' }), { workers: 1, workersReason: 'set by command line' }, 'the flag over the environment')
  t.match(await check(['--workers', '1', '--scheduling-policy', 'rr'], { CLUSTER_RUN_SCHEDULING_POLICY: 'none' }), { workers: 1, schedulingPolicy: 'rr' }, 'long flags')
  const auto = await check(['-w', 'auto'], { CLUSTER_RUN_WORKERS: '2' })
  t.match(auto, { workers: Number, workersReason: /^auto: / }, '-w auto over the environment')
})

t.test('package.json#cluster found from cwd: primary.start names it; SIGTERM exits 0', async (t) => {
  const port = await freePort()
  const cwd = t.testdir({
    'package.json': JSON.stringify({
      name: 'served-app',
      private: true,
      cluster: { app: HTTP_APP, workers: 1, env: { PORT: String(port) } },
    }),
  })
  const cli = startCli(t, [], { cwd, env: CLEAN_ENV })
  const start = await cli.waitFor('primary.start')
  t.match(start, { workers: 1, workersReason: `set by ${path.join(cwd, 'package.json')}`, app: HTTP_APP, configFile: path.join(cwd, 'package.json') })
  const ready = await cli.waitFor('worker.ready')
  const reply = await get(`http://127.0.0.1:${port}/`)
  t.equal(reply.status, 200)
  t.equal(reply.json().pid, ready.pid, 'the worker answers on the PORT from the config env')
  t.same(cli.workerPids(), [ready.pid], 'one worker')
  cli.child.kill('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('a config file that throws: exit 78 with the reason and the file, nothing forked', async (t) => {
  const port = await freePort()
  const cwd = t.testdir({
    'cluster.config.mjs': `if (process.env.PORT) throw new Error('config exploded on purpose')\nexport default { app: ${JSON.stringify(HTTP_APP)} }\n`,
  })
  const { cli, code } = await run(t, ['-w', '1'], { cwd, env: { PORT: String(port) } })
  t.equal(code, 78)
  t.match(cli.stderr(), `cluster-run: Cannot load config ${path.join(cwd, 'cluster.config.mjs')}: config exploded on purpose`)
  await nothingStarted(t, cli, port)
})

t.test('a config whose loader fails with ENOENT: exit 78, not a run with the defaults', async (t) => {
  const port = await freePort()
  const cwd = t.testdir({
    'cluster.config.mjs': "import fs from 'node:fs'\nexport default JSON.parse(fs.readFileSync('settings.json', 'utf8'))\n",
  })
  // --check: were the file skipped, this would exit 0 at once with the defaults
  const { cli, code } = await run(t, [HTTP_APP, '-w', '1', '--check'], { cwd, env: { PORT: String(port) } })
  t.equal(code, 78)
  t.equal(cli.stdout(), '', 'no config printed')
  t.match(cli.stderr(), `cluster-run: Cannot load config ${path.join(cwd, 'cluster.config.mjs')}: ENOENT`)
  t.match(cli.stderr(), 'settings.json')
  await nothingStarted(t, cli, port)
})

t.test('--config: a missing file is exit 78 naming it; an existing one is used', async (t) => {
  const cwd = t.testdir({
    'server.js': '// never run\n',
    '.clusterrc.json': JSON.stringify({ app: 'server.js', workers: 5 }),
    // app stays relative to cwd, not to the config file
    conf: { 'other.json': JSON.stringify({ app: 'server.js', workers: 2 }) },
  })
  const missing = await run(t, ['--config', 'conf/nope.json', '--check'], { cwd })
  t.equal(missing.code, 78)
  t.match(missing.cli.stderr(), `cluster-run: Config file not found: ${path.join(cwd, 'conf/nope.json')}`)
  const chosen = await run(t, ['-c', 'conf/other.json', '--check'], { cwd })
  t.equal(chosen.code, 0, chosen.cli.stderr())
  t.match(JSON.parse(chosen.cli.stdout()), { workers: 2, configFile: path.join(cwd, 'conf/other.json'), app: path.join(cwd, 'server.js') })
})

t.test('the config reader: a config that prints and leaves a timer running still starts the cluster; the reader is gone', async (t) => {
  const port = await freePort()
  const cwd = t.testdir({
    'cluster.config.mjs': "console.log('config says hello')\nsetInterval(() => {}, 1000)\n" +
      `export default { app: ${JSON.stringify(HTTP_APP)}, workers: 1, env: { PORT: '${port}' } }\n`,
  })
  const cli = startCli(t, [], { cwd, env: CLEAN_ENV })
  const ready = await cli.waitFor('worker.ready')
  t.match(cli.stdout(), 'config says hello', "the config file's output goes where the primary's goes")
  t.equal((await get(`http://127.0.0.1:${port}/`)).json().pid, ready.pid)
  // the primary's children: the worker only (the reader exited once it answered)
  const children = fs.readFileSync(`/proc/${cli.child.pid}/task/${cli.child.pid}/children`, 'utf8').trim().split(/\s+/).map(Number)
  t.same(children, [ready.pid], 'no config reader left')
  cli.child.kill('SIGTERM')
  t.equal(await cli.exited, 0)
})

t.test('the config reader: a config that exits the process is a clear error, exit 1, nothing forked', async (t) => {
  const cwd = t.testdir({ 'cluster.config.mjs': 'process.exit(7)\n' })
  const { cli, code } = await run(t, [HTTP_APP, '-w', '1'], { cwd })
  t.equal(code, 1)
  t.match(cli.stderr(), 'cluster-run: Error: the config reader stopped (exit code 7) before it answered')
  await nothingStarted(t, cli)
})

t.test('the config reader: SIGINT to the whole process group while the config loads stops the primary cleanly', async (t) => {
  const cwd = t.testdir()
  const go = path.join(cwd, 'go')
  // a config that says when it runs and loads until the test says go: the signal lands while the reader works
  fs.writeFileSync(path.join(cwd, 'cluster.config.mjs'), configWaitingFor(go, { app: HTTP_APP, workers: 1 }, "fs.writeFileSync('reading', '')\n"))
  // a process group of its own, as a terminal's: a Ctrl-C reaches the primary and the reader
  const cli = watchCli(t, spawn(process.execPath, [CLI], {
    cwd,
    env: { ...process.env, CLUSTER_RUN_HOME: controlHome(t), ...CLEAN_ENV },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  }))
  await until(() => fs.existsSync(path.join(cwd, 'reading')), 'the reader to load the config')
  process.kill(-cli.child.pid!, 'SIGINT')
  fs.writeFileSync(go, '')
  t.equal(await cli.exited, 0, 'stopped, not killed by the signal')
  t.notMatch(cli.stderr(), 'config reader stopped', 'the reader did not die of the signal')
  await nothingStarted(t, cli)
})

t.test('the README\'s TypeScript config loads in a package of every module type, as .ts, .mts and .cts, with nothing on stderr', async (t) => {
  // `import { defineConfig } from 'cluster-run'` as a user writes it: the package is
  // linked into the app's node_modules. Node 22.18+ loads a .ts in a "commonjs" package
  // (what `npm init -y` writes) as CommonJS, where its import statement fails.
  const config = (workers: number): string => `import { defineConfig } from 'cluster-run'\n\nexport default defineConfig({ app: ${JSON.stringify(HTTP_APP)}, workers: ${workers} as number })\n`
  const types: Array<[string, Record<string, string>]> = [['"type": "commonjs"', { type: 'commonjs' }], ['"type": "module"', { type: 'module' }], ['no type', {}]]
  for (const [label, type] of types) {
    await t.test(label, async (t) => {
      const cwd = t.testdir({
        'package.json': JSON.stringify({ name: 'app', version: '1.0.0', ...type }),
        node_modules: { 'cluster-run': t.fixture('symlink', ROOT) },
        'cluster.config.ts': config(2),
        'other.mts': config(3),
        'other.cts': config(4),
      })
      for (const [file, workers] of [['cluster.config.ts', 2], ['other.mts', 3], ['other.cts', 4]] as const) {
        const { cli, code } = await run(t, file === 'cluster.config.ts' ? ['--check'] : ['--config', file, '--check'], { cwd })
        t.equal(code, 0, `${label}, ${file}: exit 0`)
        t.equal(JSON.parse(cli.stdout() || '{}').workers, workers, `${label}, ${file}: its value`)
        t.equal(cli.stderr(), '', `${label}, ${file}: nothing on stderr`)
      }
    })
  }
})

t.test('TypeScript configs through the CLI: plain, with an enum, with an import without its extension; no warning printed', async (t) => {
  const cwd = t.testdir({
    'plain.mts': `const workers: number = 3\nexport default { app: ${JSON.stringify(HTTP_APP)}, workers }\n`,
    // syntax Node's type stripping refuses, and a resolution it does not do: jiti takes these
    'enum.ts': `enum Count { Two = 2 }\nexport default { app: ${JSON.stringify(HTTP_APP)}, workers: Count.Two as number }\n`,
    'other.ts': 'export const four: number = 4\n',
    'imports.ts': `import { four } from './other'\nexport default { app: ${JSON.stringify(HTTP_APP)}, workers: four }\n`,
  })
  for (const [file, workers] of [['plain.mts', 3], ['enum.ts', 2], ['imports.ts', 4]] as const) {
    const { cli, code } = await run(t, ['--config', file, '--check'], { cwd })
    t.equal(code, 0, `${file}: exit 0`)
    t.equal(JSON.parse(cli.stdout()).workers, workers, `${file}: its value`)
    t.equal(cli.stderr(), '', `${file}: nothing on stderr`)
  }
})
