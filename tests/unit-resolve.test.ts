// Unit tests for lib/config/resolve.ts: layers, merging, validation and its messages.
// Every outside fact (CPU count, file existence) is faked.
import t, { type Test } from 'tap'
import { z } from 'zod'
import {
  envLayer, formatConfigIssues as formatIssues, mergeLayers, numberOrString, resolveConfig,
  type Layer, type ResolveInputs,
} from '../lib/config/resolve.js'
import { flagLayer, parseCommandLine } from '../lib/cli-args.js'
import { ConfigError } from '../lib/common/errors.js'
import { thrown } from './helpers/errors.js'

const CWD = '/proj'
const FILE = '/proj/cluster.config.js'
const EXISTING = new Set(['/proj/server.js', '/proj/sub/server.js', '/srv/app/server.js', '/elsewhere/main.mjs'])

interface Fakes { inputs: ResolveInputs, cpuCalls: () => number, checked: string[] }

function fakes (layers: Layer[], over: Partial<ResolveInputs> = {}): Fakes {
  let cpuCalls = 0
  const checked: string[] = []
  return {
    inputs: {
      layers,
      cwd: CWD,
      cpus: () => { cpuCalls++; return { count: 6, reason: '6 CPUs available (affinity)' } },
      fileExists: (f) => { checked.push(f); return EXISTING.has(f) },
      ...over,
    },
    cpuCalls: () => cpuCalls,
    checked,
  }
}

const file = (values: Record<string, unknown>): Layer => ({ source: FILE, values })
const flags = (...argv: string[]): Layer => flagLayer(parseCommandLine(argv))

/** resolveConfig that must throw a ConfigError; returns it. */
const configError = (t: Test, inputs: ResolveInputs): ConfigError =>
  thrown(t, () => resolveConfig(inputs), ConfigError, { name: 'ConfigError', exitCode: 78 }, 'resolveConfig')

// ---------------------------------------------------------------- envLayer

t.test('envLayer: nothing set, nothing read', async (t) => {
  t.strictSame(envLayer({}), { source: 'environment', values: {} })
  t.strictSame(envLayer({ PATH: '/bin', WORKERS: '3', LOG_LEVEL: 'debug' }).values, {}, 'unrelated variables ignored')
})

t.test('envLayer: CLUSTER_RUN_WORKERS', async (t) => {
  t.strictSame(envLayer({ CLUSTER_RUN_WORKERS: '4' }).values, { workers: 4 }, 'a number')
  t.strictSame(envLayer({ CLUSTER_RUN_WORKERS: ' 8 ' }).values, { workers: 8 }, 'surrounding spaces')
  t.strictSame(envLayer({ CLUSTER_RUN_WORKERS: 'auto' }).values, { workers: 'auto' }, 'auto stays a string')
  t.strictSame(envLayer({ CLUSTER_RUN_WORKERS: 'lots' }).values, { workers: 'lots' }, 'garbage passed on for validation')
  t.strictSame(envLayer({ CLUSTER_RUN_WORKERS: '' }).values, {}, 'empty ignored')
  t.strictSame(envLayer({ CLUSTER_RUN_WORKERS: undefined }).values, {}, 'undefined ignored')
})

t.test('envLayer: scheduling policy, ours first, then Node\'s own', async (t) => {
  t.strictSame(envLayer({ CLUSTER_RUN_SCHEDULING_POLICY: 'none' }).values, { schedulingPolicy: 'none' })
  t.strictSame(envLayer({ NODE_CLUSTER_SCHED_POLICY: 'none' }).values, { schedulingPolicy: 'none' })
  t.strictSame(envLayer({ CLUSTER_RUN_SCHEDULING_POLICY: 'rr', NODE_CLUSTER_SCHED_POLICY: 'none' }).values, { schedulingPolicy: 'rr' }, 'ours wins')
  t.strictSame(envLayer({ CLUSTER_RUN_SCHEDULING_POLICY: '', NODE_CLUSTER_SCHED_POLICY: 'none' }).values, { schedulingPolicy: 'none' }, 'ours empty: Node\'s')
  t.strictSame(envLayer({ CLUSTER_RUN_SCHEDULING_POLICY: '', NODE_CLUSTER_SCHED_POLICY: '' }).values, {}, 'both empty ignored')
})

t.test('envLayer: CLUSTER_RUN_LOG_LEVEL nests under log', async (t) => {
  t.strictSame(envLayer({ CLUSTER_RUN_LOG_LEVEL: 'debug' }).values, { log: { level: 'debug' } })
  t.strictSame(envLayer({ CLUSTER_RUN_LOG_LEVEL: '' }).values, {}, 'empty ignored')
})

t.test('envLayer: all at once', async (t) => {
  t.strictSame(envLayer({ CLUSTER_RUN_WORKERS: '2', NODE_CLUSTER_SCHED_POLICY: 'rr', CLUSTER_RUN_LOG_LEVEL: 'warn' }), {
    source: 'environment',
    values: { workers: 2, schedulingPolicy: 'rr', log: { level: 'warn' } },
  })
})

// ---------------------------------------------------------------- numberOrString

t.test('numberOrString', async (t) => {
  t.equal(numberOrString('4'), 4)
  t.equal(numberOrString('0'), 0)
  t.equal(numberOrString('-2'), -2)
  t.equal(numberOrString('1.5'), 1.5)
  t.equal(numberOrString('  12\t'), 12)
  t.equal(numberOrString('auto'), 'auto')
  t.equal(numberOrString(''), '')
  t.equal(numberOrString('4a'), '4a')
  t.equal(numberOrString('1e3'), '1e3', 'no exponent notation')
  t.equal(numberOrString('0x10'), '0x10', 'no hex')
  t.equal(numberOrString('.5'), '.5')
  t.equal(numberOrString('Infinity'), 'Infinity')
})

// ---------------------------------------------------------------- mergeLayers

t.test('mergeLayers: later wins, sources say which layer', async (t) => {
  const { merged, sources } = mergeLayers([
    { source: 'a', values: { app: 'a.js', workers: 2, readiness: 'message' } },
    { source: 'b', values: { workers: 3 } },
    { source: 'c', values: { app: 'c.js' } },
  ])
  t.strictSame(merged, { app: 'c.js', workers: 3, readiness: 'message' })
  t.strictSame(Object.fromEntries(sources), { app: 'c', workers: 'b', readiness: 'a' })
})

t.test('mergeLayers: undefined values are ignored', async (t) => {
  const { merged, sources } = mergeLayers([
    { source: 'a', values: { workers: 2, log: { level: 'warn' } } },
    { source: 'b', values: { workers: undefined, log: undefined, app: undefined } },
  ])
  t.strictSame(merged, { workers: 2, log: { level: 'warn' } })
  t.equal(sources.get('workers'), 'a')
  t.equal(sources.get('log'), 'a')
  t.equal(sources.has('app'), false)
})

t.test('mergeLayers: restartBackoff, maxCrashRate, log and env merge one level', async (t) => {
  const { merged, sources } = mergeLayers([
    { source: 'a', values: { restartBackoff: { initialMs: 1, maxMs: 2 }, maxCrashRate: { crashes: 9 }, log: { level: 'debug' }, env: { A: '1', B: '2' } } },
    { source: 'b', values: { restartBackoff: { maxMs: 3 }, maxCrashRate: { windowMs: 7 }, log: { pretty: true }, env: { B: 'x', C: '3' } } },
  ])
  t.strictSame(merged, {
    restartBackoff: { initialMs: 1, maxMs: 3 },
    maxCrashRate: { crashes: 9, windowMs: 7 },
    log: { level: 'debug', pretty: true },
    env: { A: '1', B: 'x', C: '3' },
  })
  t.strictSame(Object.fromEntries(sources), {
    restartBackoff: 'b',
    'restartBackoff.initialMs': 'a',
    'restartBackoff.maxMs': 'b',
    maxCrashRate: 'b',
    'maxCrashRate.crashes': 'a',
    'maxCrashRate.windowMs': 'b',
    log: 'b',
    'log.level': 'a',
    'log.pretty': 'b',
    env: 'b',
    'env.A': 'a',
    'env.B': 'b',
    'env.C': 'b',
  })
})

t.test('mergeLayers: only one level deep', async (t) => {
  const { merged } = mergeLayers([
    { source: 'a', values: { log: { level: { deep: 1, keep: 2 } } } },
    { source: 'b', values: { log: { level: { deep: 3 } } } },
  ])
  t.strictSame(merged, { log: { level: { deep: 3 } } }, 'the second level is replaced, not merged')
})

t.test('mergeLayers: other keys are replaced, never merged', async (t) => {
  const { merged, sources } = mergeLayers([
    { source: 'a', values: { args: ['--a'], execArgv: ['--inspect'], other: { x: 1 } } },
    { source: 'b', values: { args: ['--b'], other: { y: 2 } } },
  ])
  t.strictSame(merged, { args: ['--b'], execArgv: ['--inspect'], other: { y: 2 } })
  t.equal(sources.get('other.y'), 'b', 'sub-keys of a replacing object are recorded')
  t.equal(sources.has('args.0'), false, 'arrays are not objects here')
})

t.test('mergeLayers: a nested key replaced by, or replacing, a non-object', async (t) => {
  t.strictSame(mergeLayers([
    { source: 'a', values: { log: { level: 'debug' } } },
    { source: 'b', values: { log: 'loud' } },
  ]).merged, { log: 'loud' })
  const { merged, sources } = mergeLayers([
    { source: 'a', values: { log: 'loud' } },
    { source: 'b', values: { log: { level: 'warn' } } },
  ])
  t.strictSame(merged, { log: { level: 'warn' } })
  t.equal(sources.get('log.level'), 'b')
  t.strictSame(mergeLayers([
    { source: 'a', values: { env: ['x'] } },
    { source: 'b', values: { env: { A: '1' } } },
  ]).merged, { env: { A: '1' } }, 'an array is not merged into')
})

t.test('mergeLayers: does not mutate its layers', async (t) => {
  const first = { log: { level: 'debug' }, env: { A: '1' } }
  const second = { log: { pretty: true }, env: { B: '2' } }
  mergeLayers([{ source: 'a', values: first }, { source: 'b', values: second }])
  t.strictSame(first, { log: { level: 'debug' }, env: { A: '1' } })
  t.strictSame(second, { log: { pretty: true }, env: { B: '2' } })
})

t.test('mergeLayers: no layers', async (t) => {
  const { merged, sources } = mergeLayers([])
  t.strictSame(merged, {})
  t.equal(sources.size, 0)
})

// ---------------------------------------------------------------- resolveConfig: workers

t.test('resolveConfig: workers defaults to auto, the CPU count', async (t) => {
  const f = fakes([file({ app: 'server.js' })])
  const cfg = resolveConfig(f.inputs)
  t.equal(cfg.workers, 6)
  t.equal(cfg.workersReason, 'auto: 6 CPUs available (affinity)')
  t.equal(f.cpuCalls(), 1)
})

t.test('resolveConfig: workers precedence defaults < file < env < flags', async (t) => {
  const fileOnly = resolveConfig(fakes([file({ app: 'server.js', workers: 2 }), envLayer({}), flags()]).inputs)
  t.equal(fileOnly.workers, 2)
  t.equal(fileOnly.workersReason, `set by ${FILE}`)

  const f = fakes([file({ app: 'server.js', workers: 2 }), envLayer({ CLUSTER_RUN_WORKERS: '3' }), flags()])
  const env = resolveConfig(f.inputs)
  t.equal(env.workers, 3)
  t.equal(env.workersReason, 'set by environment')
  t.equal(f.cpuCalls(), 0, 'no CPU count needed for an explicit number')

  const flag = resolveConfig(fakes([file({ app: 'server.js', workers: 2 }), envLayer({ CLUSTER_RUN_WORKERS: '3' }), flags('-w', '4')]).inputs)
  t.equal(flag.workers, 4)
  t.equal(flag.workersReason, 'set by command line')
})

t.test('resolveConfig: an explicit auto wins over a lower layer\'s number', async (t) => {
  const f = fakes([file({ app: 'server.js', workers: 2 }), envLayer({ CLUSTER_RUN_WORKERS: 'auto' })])
  const cfg = resolveConfig(f.inputs)
  t.equal(cfg.workers, 6)
  t.match(cfg.workersReason, /^auto: /)
  t.match(cfg.workersReason, '6 CPUs available (affinity)')
  t.equal(f.cpuCalls(), 1)
  const flagAuto = resolveConfig(fakes([file({ app: 'server.js', workers: 2 }), flags('-w', 'auto')]).inputs)
  t.equal(flagAuto.workers, 6)
})

t.test('resolveConfig: other settings follow the same precedence', async (t) => {
  const cfg = resolveConfig(fakes([
    file({ app: 'server.js', schedulingPolicy: 'rr', log: { level: 'error', pretty: true } }),
    envLayer({ NODE_CLUSTER_SCHED_POLICY: 'none', CLUSTER_RUN_LOG_LEVEL: 'debug' }),
    flags('--log-level', 'warn'),
  ]).inputs)
  t.equal(cfg.schedulingPolicy, 'none', 'env over file')
  t.match(cfg.log, { level: 'warn', pretty: true }, 'flag level over env over file; pretty kept from the file')
})

// ---------------------------------------------------------------- resolveConfig: paths

t.test('resolveConfig: a relative app is resolved against cwd', async (t) => {
  const f = fakes([file({ app: 'server.js' })])
  const cfg = resolveConfig(f.inputs)
  t.equal(cfg.app, '/proj/server.js')
  t.equal(cfg.cwd, '/proj')
  t.strictSame(f.checked, ['/proj/server.js'], 'existence checked on the resolved path')
  t.equal(resolveConfig(fakes([file({ app: './sub/../server.js' })]).inputs).app, '/proj/server.js', 'normalized')
})

t.test('resolveConfig: the config cwd, relative or absolute', async (t) => {
  const rel = resolveConfig(fakes([file({ app: 'server.js', cwd: 'sub' })]).inputs)
  t.equal(rel.cwd, '/proj/sub')
  t.equal(rel.app, '/proj/sub/server.js')
  const abs = resolveConfig(fakes([file({ app: 'server.js', cwd: '/srv/app' })]).inputs)
  t.equal(abs.cwd, '/srv/app')
  t.equal(abs.app, '/srv/app/server.js')
})

t.test('resolveConfig: an absolute app is kept', async (t) => {
  const cfg = resolveConfig(fakes([file({ app: '/elsewhere/main.mjs', cwd: 'sub' })]).inputs)
  t.equal(cfg.app, '/elsewhere/main.mjs')
  t.equal(cfg.cwd, '/proj/sub')
})

t.test('resolveConfig: a missing entry file is a ConfigError naming app and the path', async (t) => {
  const err = configError(t, fakes([file({ app: 'server.js' }), flags('missing.js')]).inputs)
  t.equal(err.issues.length, 1)
  t.equal(err.issues[0], 'app: the entry file does not exist (given: "missing.js", resolved to /proj/missing.js, from command line)')
  t.equal(err.message, `Invalid configuration\n  - ${err.issues[0]}`)

  const inSub = configError(t, fakes([file({ app: 'nope.js', cwd: 'sub' })]).inputs)
  t.match(inSub.issues[0], /^app: .*"nope\.js".*\/proj\/sub\/nope\.js, from \/proj\/cluster\.config\.js\)$/)
})

t.test('resolveConfig: no app at all', async (t) => {
  const err = configError(t, fakes([envLayer({})]).inputs)
  t.strictSame(err.issues, ['app: Invalid input: expected string, received undefined (given: nothing)'])
})

// ---------------------------------------------------------------- resolveConfig: validation messages

t.test('resolveConfig: every problem is reported at once', async (t) => {
  const err = configError(t, fakes([
    file({
      app: 'server.js',
      restartBackof: { initialMs: 1 },
      maxCrashRate: { crashs: 3 },
      log: { level: 'loud', prety: true },
      readyTimeoutMs: -1,
      schedulingPolicy: 'fair',
      banana: 1,
    }),
    envLayer({ CLUSTER_RUN_WORKERS: 'lots' }),
  ]).inputs)
  t.equal(err.issues.length, 8, err.issues.join('\n'))
  const line = (key: string): string | undefined => err.issues.find((l) => l.startsWith(`${key}:`))
  t.match(line('workers'), /^workers: .+ \(given: "lots", from environment\)$/)
  t.equal(line('schedulingPolicy'), `schedulingPolicy: Invalid option: expected one of "rr"|"none"|"reuseport"|"sticky" (given: "fair", from ${FILE})`)
  t.match(line('log.level'), /^log\.level: .*expected one of .*"info".* \(given: "loud", from \/proj\/cluster\.config\.js\)$/)
  t.match(line('readyTimeoutMs'), /^readyTimeoutMs: .*expected number to be >0 \(given: -1, from \/proj\/cluster\.config\.js\)$/)
  t.equal(line('restartBackof'), `restartBackof: unknown key, did you mean "restartBackoff"? (given: {"initialMs":1}, from ${FILE})`)
  t.equal(line('maxCrashRate.crashs'), `maxCrashRate.crashs: unknown key, did you mean "crashes"? (given: 3, from ${FILE})`)
  t.equal(line('log.prety'), `log.prety: unknown key, did you mean "pretty"? (given: true, from ${FILE})`)
  t.equal(line('banana'), `banana: unknown key (given: 1, from ${FILE})`, 'no suggestion for an unrelated word')
  for (const l of err.issues) t.ok(err.message.includes(`\n  - ${l}`), `the message lists: ${l}`)
})

t.test('resolveConfig: an issue names the layer the bad nested value came from', async (t) => {
  const err = configError(t, fakes([
    file({ app: 'server.js', log: { level: 'info', pretty: 'yes' } }),
    envLayer({ CLUSTER_RUN_LOG_LEVEL: 'verbose' }),
  ]).inputs)
  t.equal(err.issues.length, 2)
  t.match(err.issues, [/^log\.level: .*\(given: "verbose", from environment\)$/, /^log\.pretty: .*expected boolean.*\(given: "yes", from \/proj\/cluster\.config\.js\)$/])
})

t.test('resolveConfig: bad values inside arrays, records and nested objects', async (t) => {
  const err = configError(t, fakes([file({
    app: 'server.js',
    args: ['--ok', 3],
    env: { A: null },
    restartBackoff: { factor: 0.5, jitter: 2 },
    maxCrashRate: 'often',
    stopOnExitCodes: [1.5],
  })]).inputs)
  t.equal(err.issues.length, 6, err.issues.join('\n'))
  const patterns = [
    /^args\.1: .*expected string.*\(given: 3\b/,
    /^env\.A: .*expected a string, number or boolean.*\(given: null, from \/proj\/cluster\.config\.js\)$/,
    /^restartBackoff\.factor: .*>=1.*\(given: 0\.5, from \/proj\/cluster\.config\.js\)$/,
    /^restartBackoff\.jitter: .*<=1.*\(given: 2, from \/proj\/cluster\.config\.js\)$/,
    /^maxCrashRate: .*expected object.*\(given: "often", from \/proj\/cluster\.config\.js\)$/,
    /^stopOnExitCodes\.0: .*expected int.*\(given: 1\.5\b/,
  ]
  for (const re of patterns) t.ok(err.issues.some((l) => re.test(l)), `an issue matches ${re}`)
})

t.test('resolveConfig: env values that are numbers or booleans become strings, as Compose makes them', async (t) => {
  const cfg = resolveConfig(fakes([file({ app: 'server.js', env: { PORT: 3000, DEBUG: true, OFF: false, RATIO: 0.5, NAME: 'x' } })]).inputs)
  t.strictSame(cfg.env, { PORT: '3000', DEBUG: 'true', OFF: 'false', RATIO: '0.5', NAME: 'x' })
})

t.test('resolveConfig: an issue inside an array names the layer it came from', async (t) => {
  const err = configError(t, fakes([file({ app: 'server.js', args: ['--ok', 3], stopOnExitCodes: [1.5] })]).inputs)
  t.equal(err.issues.length, 2)
  t.match(err.issues[0], /^args\.1: .*\(given: 3, from \/proj\/cluster\.config\.js\)$/)
  t.match(err.issues[1], /^stopOnExitCodes\.0: .*\(given: 1\.5, from \/proj\/cluster\.config\.js\)$/)
})

t.test('resolveConfig: values that JSON cannot show', async (t) => {
  const err = configError(t, fakes([file({ app: 'server.js', workers: () => 4, readyTimeoutMs: 10n })]).inputs)
  t.match(err.issues.find((l) => l.startsWith('workers:')), /\(given: a function, from /)
  t.match(err.issues.find((l) => l.startsWith('readyTimeoutMs:')), /\(given: 10n, from /)
})

t.test('resolveConfig: a hook must be a function', async (t) => {
  const err = configError(t, fakes([file({ app: 'server.js', onReload: 'reload.sh' })]).inputs)
  t.strictSame(err.issues, [`onReload: Invalid input: expected a function (given: "reload.sh", from ${FILE})`])
  const ok = resolveConfig(fakes([file({ app: 'server.js', onReload: () => {} })]).inputs)
  t.type(ok.onReload, 'function')
})

t.test('resolveConfig: a bad workers value says what was expected', async (t) => {
  for (const [given, shown] of [['lots', '"lots"'], [2.5, '2.5'], [null, 'null']] as const) {
    const err = configError(t, fakes([file({ app: 'server.js', workers: given })]).inputs)
    t.equal(err.issues.length, 1)
    t.match(err.issues[0], new RegExp(`^workers: .*(positive integer|"auto").* \\(given: ${shown.replace('.', '\\.')}, from `), `given ${shown}`)
  }
})

// ---------------------------------------------------------------- resolveConfig: result

t.test('resolveConfig: every default is filled', async (t) => {
  const cfg = resolveConfig(fakes([file({ app: 'server.js' })]).inputs)
  t.strictSame({ ...cfg }, {
    app: '/proj/server.js',
    args: [],
    execArgv: [],
    env: {},
    cwd: '/proj',
    workers: 6,
    workersReason: 'auto: 6 CPUs available (affinity)',
    schedulingPolicy: 'rr',
    sticky: { by: 'address' },
    readiness: 'listening',
    restartBackoff: { initialMs: 100, maxMs: 15_000, factor: 2, jitter: 0.1, resetAfterMs: 30_000 },
    maxCrashRate: { crashes: 5, windowMs: 60_000 },
    readyTimeoutMs: 10_000,
    shutdownTimeoutMs: 10_000,
    shutdownDelayMs: 0,
    minReadyWorkers: 1,
    heartbeatTimeoutMs: 30_000,
    maxMemoryMb: 0,
    maxRequests: 0,
    maxRequestsJitter: 0,
    stopOnExitCodes: [],
    log: { level: 'info', workerOutput: 'capture', stdout: true, rotate: { keep: 5 }, history: { lines: 1000, bytes: 1024 * 1024 } },
    configFile: undefined,
    appSource: '/proj/cluster.config.js',
    name: 'server',
    controlSocket: false,
  })
})

t.test('resolveConfig: the name comes from the package, else the entry; the socket sits in the control directory', async (t) => {
  const pkg = (name?: string) => ({ packageName: (dir: string) => dir === '/proj' ? name : undefined, controlDir: '/run/user/0/cluster-run' })
  t.equal(resolveConfig(fakes([file({ app: 'server.js' })], pkg()).inputs).name, 'server', 'no package name: the entry without its extension')
  t.equal(resolveConfig(fakes([file({ app: 'server.js' })], pkg('shop')).inputs).name, 'shop')
  t.equal(resolveConfig(fakes([file({ app: 'server.js' })], pkg('@acme/shop api')).inputs).name, 'acme-shop-api', 'a scope and spaces folded into a file name')
  const set = resolveConfig(fakes([file({ app: 'server.js', name: 'api.v2' }), flags('--name', 'api-v3')], pkg('shop')).inputs)
  t.equal(set.name, 'api-v3', 'the flag wins')
  t.equal(set.controlSocket, '/run/user/0/cluster-run/api-v3.sock')
  t.equal(resolveConfig(fakes([file({ app: 'server.js', controlSocket: false })], pkg()).inputs).controlSocket, false, 'false turns it off')
  t.equal(resolveConfig(fakes([file({ app: 'server.js', controlSocket: 'run/ctl.sock' })], pkg()).inputs).controlSocket, '/proj/run/ctl.sock', 'a path, relative to cwd')
})

t.test('resolveConfig: a name that is no file name, or a bad socket setting, is a config error', async (t) => {
  for (const name of ['', '../x', 'a/b', '.hidden', '-x', 'x'.repeat(65), 3]) {
    const err = configError(t, fakes([file({ app: 'server.js', name })]).inputs)
    t.match(err.issues.join('\n'), /^name: /, `name ${JSON.stringify(name)}`)
  }
  const socket = configError(t, fakes([file({ app: 'server.js', controlSocket: true })]).inputs)
  t.match(socket.issues.join('\n'), /controlSocket: .*false or a socket path/)
})

t.test('resolveConfig: a partial nested object gets the rest of its defaults', async (t) => {
  const cfg = resolveConfig(fakes([file({ app: 'server.js', restartBackoff: { initialMs: 500 }, maxCrashRate: { crashes: 2 }, log: { pretty: true } })]).inputs)
  t.strictSame(cfg.restartBackoff, { initialMs: 500, maxMs: 15_000, factor: 2, jitter: 0.1, resetAfterMs: 30_000 })
  t.strictSame(cfg.maxCrashRate, { crashes: 2, windowMs: 60_000 })
  t.strictSame(cfg.log, { level: 'info', pretty: true, workerOutput: 'capture', stdout: true, rotate: { keep: 5 }, history: { lines: 1000, bytes: 1024 * 1024 } })
})

t.test('resolveConfig: given values and configFile are kept', async (t) => {
  const cfg = resolveConfig(fakes([file({
    app: 'server.js',
    args: ['--port', '3000'],
    env: { NODE_ENV: 'production' },
    readiness: 'message',
    stopOnExitCodes: [78],
    maxMemoryMb: 512,
  })], { configFile: FILE }).inputs)
  t.strictSame(cfg.args, ['--port', '3000'])
  t.strictSame(cfg.env, { NODE_ENV: 'production' })
  t.equal(cfg.readiness, 'message')
  t.strictSame(cfg.stopOnExitCodes, [78])
  t.equal(cfg.maxMemoryMb, 512)
  t.equal(cfg.configFile, FILE)
})

t.test('resolveConfig: the result is frozen', async (t) => {
  const cfg = resolveConfig(fakes([file({ app: 'server.js' })]).inputs)
  t.ok(Object.isFrozen(cfg))
  t.throws(() => { (cfg as { workers: number }).workers = 99 }, TypeError)
  t.equal(cfg.workers, 6)
})

// ---------------------------------------------------------------- formatIssues directly

t.test('formatIssues: a root-level issue', async (t) => {
  const r = z.string().safeParse(42)
  t.equal(r.success, false)
  t.strictSame(formatIssues(r.error!, 42, new Map()), ['(root): Invalid input: expected string, received number (given: 42)'])
})

t.test('formatIssues: a path through a non-object shows nothing given', async (t) => {
  const err = new z.ZodError([{ code: 'custom', path: ['a', 'b', 'c'], message: 'broken', input: undefined }])
  t.strictSame(formatIssues(err, { a: 5 }, new Map([['a.b.c', 'x']])), ['a.b.c: broken (given: nothing, from x)'])
  t.strictSame(formatIssues(err, { a: null }, new Map()), ['a.b.c: broken (given: nothing)'])
})

t.test('formatIssues: unknown keys at a level with no known keys, several at once', async (t) => {
  const err = new z.ZodError([{ code: 'unrecognized_keys', path: ['env'], keys: ['x', 'y'], message: 'm', input: {} }])
  t.strictSame(formatIssues(err, {}, new Map([['env.x', 'f']])), ['env.x: unknown key (given: nothing, from f)', 'env.y: unknown key (given: nothing)'])
})

t.test('formatIssues: the "defaults" source is not named', async (t) => {
  const r = z.strictObject({ n: z.number() }).safeParse({ n: 'x' })
  t.strictSame(formatIssues(r.error!, { n: 'x' }, new Map([['n', 'defaults']])), ['n: Invalid input: expected number, received string (given: "x")'])
})

t.test('formatIssues: a symbol is shown with String()', async (t) => {
  const r = z.strictObject({ n: z.number() }).safeParse({ n: Symbol('s') })
  t.strictSame(formatIssues(r.error!, { n: Symbol('s') }, new Map()), ['n: Invalid input: expected number, received symbol (given: Symbol(s))'])
})

t.test('formatIssues: a circular value is shown with String()', async (t) => {
  const circular: Record<string, unknown> = {}
  circular.self = circular
  const r = z.strictObject({ n: z.number() }).safeParse({ n: circular })
  t.strictSame(formatIssues(r.error!, { n: circular }, new Map()), ['n: Invalid input: expected number, received object (given: [object Object])'])
})

t.test('ConfigError: message and issues', async (t) => {
  const plain = new ConfigError('Cannot load')
  t.equal(plain.message, 'Cannot load')
  t.strictSame(plain.issues, [])
  t.equal(plain.exitCode, 78)
  t.equal(plain.name, 'ConfigError')
  t.ok(plain instanceof Error)
})

t.test('resolveConfig: log files, rotation and history: sizes with units, paths from cwd, and every bad value named', async (t) => {
  const cfg = resolveConfig(fakes([file({ app: 'server.js', log: { file: 'logs/app.log', errorFile: '/var/log/err.log', rotate: { size: '10M', interval: '1d', keep: 7 }, history: { lines: 200, bytes: '2M' } } })]).inputs)
  t.match(cfg.log, { file: '/proj/logs/app.log', errorFile: '/var/log/err.log', rotate: { size: 10 * 1024 * 1024, interval: '1d', keep: 7 }, history: { lines: 200, bytes: 2 * 1024 * 1024 }, workerOutput: 'capture', stdout: true })
  t.match(resolveConfig(fakes([file({ app: 'server.js', log: { rotate: { size: 4096 } } })]).inputs).log.rotate, { size: 4096, keep: 5 }, 'a size in bytes')
  const err = configError(t, fakes([file({ app: 'server.js', log: { file: '', rotate: { size: '10X', interval: '7h', keep: 0 }, history: { lines: -1 }, workerOutput: 'tee' } })]).inputs)
  t.equal(err.issues.length, 6, err.issues.join('\n'))
  for (const re of [/^log\.file: /, /^log\.rotate\.size: .*expected bytes, or a size such as "10M"/, /^log\.rotate\.interval: .*expected an interval such as "1d"/, /^log\.rotate\.keep: /, /^log\.history\.lines: /, /^log\.workerOutput: /]) {
    t.ok(err.issues.some((l) => re.test(l)), `an issue matches ${re}`)
  }
  const nowhere = configError(t, fakes([file({ app: 'server.js', log: { stdout: false } })]).inputs)
  t.match(nowhere.issues, [/^log\.stdout: false writes the log nowhere without log\.file/])
  const unknown = configError(t, fakes([file({ app: 'server.js', log: { rotate: { sise: '1M' } } })]).inputs)
  t.match(unknown.issues, [/^log\.rotate\.sise: unknown key, did you mean "size"\?/])
})
