// Unit tests for lib/cli-args.ts: the command line parsed, then turned into a layer.
import t, { type Test } from 'tap'
import { flagLayer, parseCommandLine, unknownCommand } from '../lib/cli-args.js'
import { UsageError } from '../lib/common/errors.js'
import { thrown } from './helpers/errors.js'

const usageError = (t: Test, argv: string[]): UsageError =>
  thrown(t, () => parseCommandLine(argv), UsageError, { name: 'UsageError', exitCode: 64 }, `parseCommandLine(${JSON.stringify(argv)})`)

// parseArgs returns `values` with a null prototype: copy it to compare with strictSame
function parse (argv: string[]): ReturnType<typeof parseCommandLine> {
  const inv = parseCommandLine(argv)
  return { ...inv, values: { ...inv.values } }
}

// ---------------------------------------------------------------- parseCommandLine

t.test('parseCommandLine: nothing at all', async (t) => {
  t.strictSame(parse([]), { entry: undefined, appArgs: undefined, values: {} })
})

t.test('parseCommandLine: the entry positional', async (t) => {
  t.strictSame(parse(['server.js']), { entry: 'server.js', appArgs: undefined, values: {} })
})

t.test('parseCommandLine: -w / --workers', async (t) => {
  t.strictSame(parse(['-w', '4', 'server.js']), { entry: 'server.js', appArgs: undefined, values: { workers: '4' } })
  t.equal(parseCommandLine(['server.js', '--workers', 'auto']).values.workers, 'auto')
  t.equal(parseCommandLine(['--workers=8', 'server.js']).values.workers, '8')
  t.equal(parseCommandLine(['-w2']).values.workers, '2')
})

t.test('parseCommandLine: --scheduling-policy, --log-level, --pretty, --check', async (t) => {
  const inv = parse(['--scheduling-policy', 'none', '--log-level', 'debug', '--pretty', '--check', 'server.js'])
  t.equal(inv.entry, 'server.js')
  t.strictSame(inv.values, { 'scheduling-policy': 'none', 'log-level': 'debug', pretty: true, check: true })
})

t.test('parseCommandLine: -c / --config, -h, -v', async (t) => {
  t.strictSame(parse(['-c', 'cluster.prod.js']).values, { config: 'cluster.prod.js' })
  t.strictSame(parse(['--config=conf/c.json', 'app.js']).values, { config: 'conf/c.json' })
  t.strictSame(parse(['-h']).values, { help: true })
  t.strictSame(parse(['--version']).values, { version: true })
})

t.test('parseCommandLine: arguments after -- go to the app, unparsed', async (t) => {
  t.strictSame(parse(['server.js', '--', '--port', '3000', '-w', '2']), {
    entry: 'server.js',
    appArgs: ['--port', '3000', '-w', '2'],
    values: {},
  })
  t.strictSame(parse(['-w', '3', 'server.js', '--', 'extra', '--', 'more']), {
    entry: 'server.js',
    appArgs: ['extra', '--', 'more'],
    values: { workers: '3' },
  }, 'a second -- is the app\'s')
  t.strictSame(parse(['server.js', '--']).appArgs, [], 'a bare -- gives the app no arguments (not undefined)')
  t.strictSame(parse(['--', 'a', 'b']), { entry: undefined, appArgs: ['a', 'b'], values: {} }, 'no entry before --')
})

t.test('parseCommandLine: an unknown flag is a UsageError', async (t) => {
  const err = usageError(t, ['--bogus', 'server.js'])
  t.match(err.message, '--bogus')
  t.match(usageError(t, ['-x']).message, '-x')
})

t.test('parseCommandLine: a flag missing its value is a UsageError', async (t) => {
  t.match(usageError(t, ['server.js', '-w']).message, /workers/)
  t.match(usageError(t, ['--log-level']).message, /log-level/)
})

t.test('parseCommandLine: a boolean flag given a value is a UsageError', async (t) => {
  t.match(usageError(t, ['--pretty=yes', 'server.js']).message, /pretty/)
})

t.test('parseCommandLine: a second positional before -- is a UsageError', async (t) => {
  const err = usageError(t, ['server.js', 'other.js'])
  t.equal(err.message, 'Unexpected argument "other.js": pass arguments for the app after "--"')
  t.equal(usageError(t, ['a.js', 'b.js', 'c.js', '--', 'x']).message, 'Unexpected argument "b.js": pass arguments for the app after "--"')
})

// ---------------------------------------------------------------- flagLayer

t.test('flagLayer: no flags, nothing set', async (t) => {
  t.strictSame(flagLayer(parseCommandLine([])), {
    source: 'command line',
    values: { app: undefined, args: undefined, workers: undefined, schedulingPolicy: undefined, name: undefined, metrics: undefined, log: undefined },
  })
})

t.test('flagLayer: everything', async (t) => {
  const layer = flagLayer(parseCommandLine(['-w', '4', '--scheduling-policy', 'none', '--name', 'shop', '--metrics-port', '9100', '--log-level', 'warn', '--pretty', '-c', 'x.js', '--check', 'server.js', '--', '--port', '1']))
  t.strictSame(layer, {
    source: 'command line',
    values: {
      app: 'server.js',
      args: ['--port', '1'],
      workers: 4,
      schedulingPolicy: 'none',
      name: 'shop',
      metrics: { port: 9100 },
      log: { level: 'warn', pretty: true },
    },
  })
})

t.test('flagLayer: workers is a number when it looks like one, else the string', async (t) => {
  t.equal(flagLayer(parseCommandLine(['-w', '4'])).values.workers, 4)
  t.equal(flagLayer(parseCommandLine(['-w', '0'])).values.workers, 0, 'left for validation to reject')
  t.equal(flagLayer(parseCommandLine(['-w', '2.5'])).values.workers, 2.5)
  t.equal(flagLayer(parseCommandLine(['-w', 'auto'])).values.workers, 'auto', 'auto stays a string')
  t.equal(flagLayer(parseCommandLine(['-w', 'lots'])).values.workers, 'lots')
})

t.test('flagLayer: log level and pretty nest under log, each alone', async (t) => {
  t.strictSame(flagLayer(parseCommandLine(['--log-level', 'debug'])).values.log, { level: 'debug' })
  t.strictSame(flagLayer(parseCommandLine(['--pretty'])).values.log, { pretty: true })
  t.strictSame(flagLayer({ values: { pretty: false } }).values.log, undefined, 'pretty: false adds nothing')
  t.strictSame(flagLayer({ values: { 'log-level': '' } }).values.log, { level: '' }, 'an empty level is passed on for validation')
})

t.test('flagLayer: config, check, help and version are not config values', async (t) => {
  const layer = flagLayer(parseCommandLine(['-c', 'x.js', '--check', '-h', '-v']))
  t.strictSame(Object.keys(layer.values).sort(), ['app', 'args', 'log', 'metrics', 'name', 'schedulingPolicy', 'workers'])
  t.strictSame(Object.values(layer.values), [undefined, undefined, undefined, undefined, undefined, undefined, undefined])
})

t.test('flagLayer: an empty app argument list after --', async (t) => {
  t.strictSame(flagLayer(parseCommandLine(['s.js', '--'])).values.args, [])
})

// ---------------------------------------------------------------- unknownCommand, usageOf

t.test('unknownCommand: a word that is neither a command nor a file', async (t) => {
  const none = (): boolean => false
  t.equal(unknownCommand(undefined, none), undefined)
  t.equal(unknownCommand('status', none), undefined, 'a command')
  t.equal(unknownCommand('server.js', none), undefined, 'a file name: a missing entry, not a command')
  t.equal(unknownCommand('./server', none), undefined)
  t.equal(unknownCommand('--check', none), undefined)
  t.equal(unknownCommand('server', () => true), undefined, 'an existing file without an extension')
  t.match(unknownCommand('sclae', none), { exitCode: 64, message: /^unknown command "sclae": did you mean "scale"\?/ })
  t.match(unknownCommand('list', none), { message: /^unknown command "list": use "cluster-run ls"/ })
  t.match(unknownCommand('restart', none), { message: /use "cluster-run reload"/ })
  t.match(unknownCommand('deploy', none), { message: /^unknown command "deploy" \(commands: ls, status, top, reload, scale, stop, upgrade, logs, startup; an entry file "deploy" does not exist either\)$/ })
})

t.test('usageOf: an unknown option gets the closest known one; other parse errors pass through', async (t) => {
  t.match(usageError(t, ['--worker', '2']), { message: 'unknown option --worker: did you mean --workers?' })
  t.match(usageError(t, ['--prety']), { message: 'unknown option --prety: did you mean --pretty?' })
  t.match(usageError(t, ['--frobnicate']), { message: 'unknown option --frobnicate' })
  t.match(usageError(t, ['-x']), { message: 'unknown option -x' })
  t.match(usageError(t, ['--workers']), { message: /--workers/ }, 'a missing value keeps its own message')
})
