#!/usr/bin/env node
// argv → resolved config → run() → exit code. The only place that calls process.exit.
// Only the command line and the config reader are loaded before the config read
// starts; the rest of the primary loads while the reader works.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { usageOf } from './common/issues.js'
import { loadConfigOnce } from './config/once.js'
import { COMMANDS, COMMANDS_HELP, parseCommandLine, flagLayer, unknownCommand } from './cli-args.js'
import { ConfigError, UsageError, ClusterError, StartError } from './common/errors.js'
import type { Config } from './config/schema.js'

const HELP = `Usage: cluster-run [entry] [options] [-- app args]

Runs a Node.js server on every CPU core and keeps it alive.

Options:
  -c, --config <file>            config file (default: searched in the current directory)
  -w, --workers <n|auto>         number of workers (default: auto, the CPUs this process may use)
  -n, --name <name>              the cluster's name for the commands below (default: the package name)
      --scheduling-policy <p>    rr (the primary spreads connections), none (the kernel does),
                                 reuseport (the kernel, a queue per worker; Linux, Node 22.12+)
                                 or sticky (the primary keeps each client on its slot)
      --metrics-port <port>      serve /metrics, /healthz and /readyz from the primary
      --log-level <level>        trace, debug, info, warn, error, fatal or silent
      --pretty                   human-readable logs instead of JSON lines (on a terminal: default)
      --check                    validate and print the resolved config; fork nothing
  -h, --help                     this help
  -v, --version                  the version

${COMMANDS_HELP}

Signals: SIGINT/SIGTERM drain and stop (twice: kill), SIGHUP reloads with zero
downtime, SIGTTIN/SIGTTOU add/remove a worker.
Exit codes: 0 stopped cleanly, 1 crash rate exceeded or a worker had to be killed,
3 the app fails at boot, 64 usage error, 69 no such cluster runs, 73 a cluster
of that name runs already, 77 an unsafe socket directory, 78 invalid configuration.`

async function main (argv: string[]): Promise<number> {
  if (argv[0] === 'startup') return startup(argv.slice(1))
  if (COMMANDS.has(argv[0])) {
    const { runCommand } = await import('./control/commands.js')
    return runCommand(argv, {
      stdout: process.stdout,
      stdin: process.stdin,
      out: (text) => process.stdout.write(text + '\n'),
      err: (text) => process.stderr.write(text + '\n'),
      env: process.env,
      isTTY: process.stdout.isTTY === true,
    })
  }
  const notACommand = unknownCommand(argv[0], (file) => fs.existsSync(file))
  if (notACommand) throw notACommand
  const invocation = parseCommandLine(argv)
  if (invocation.values.help) return print(HELP)
  if (invocation.values.version) return print(readVersion())
  const read = () => loadConfigOnce({ cwd: process.cwd(), env: process.env, file: invocation.values.config ?? true, flags: flagLayer(invocation) })
  if (invocation.values.check) {
    const config = await read()
    return print(JSON.stringify(config, (_, v) => typeof v === 'function' ? '[function]' : v, 2))
  }
  // the first read starts now; every reload reads anew
  let first: Promise<Config> | undefined = read()
  first.catch(() => {}) // awaited by startCluster; a failure before that is not unhandled
  const resolve = (): Promise<Config> => {
    const config = first ?? read()
    first = undefined
    return config
  }
  const { startCluster } = await import('./run.js')
  const cluster = await startCluster(resolve)
  return cluster.exited
}

const STARTUP_OPTIONS = {
  user: { type: 'string' },
  socket: { type: 'string' },
  'socket-unit': { type: 'boolean' },
  config: { type: 'string', short: 'c' },
} as const

/**
 * `cluster-run startup [name] [--user u] [--socket [host:]port [--socket-unit]] [-- args]`:
 * the systemd service (or socket) unit that runs cluster-run here, with these args.
 */
async function startup (argv: string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: STARTUP_OPTIONS, allowPositionals: true, strict: true, tokens: true })
  } catch (err) {
    throw usageOf(err, STARTUP_OPTIONS, 'startup: ')
  }
  const { values, tokens } = parsed
  const terminator = tokens.find((t) => t.kind === 'option-terminator')?.index ?? Infinity
  const names = tokens.filter((t) => t.kind === 'positional' && t.index < terminator).map((t) => (t as { value: string }).value)
  const after = tokens.filter((t) => t.kind === 'positional' && t.index > terminator).map((t) => (t as { value: string }).value)
  if (names.length > 1) throw new UsageError(`startup takes at most one name (given: ${names.join(' ')}); pass cluster-run's arguments after "--"`)
  if (values['socket-unit'] && !values.socket) throw new UsageError('startup: --socket-unit needs --socket [host:]port')
  if (values.socket !== undefined && !/^(\d+|[\w.-]+:\d+|\[[0-9a-f:.]+\]:\d+)$/i.test(values.socket)) {
    throw new UsageError(`startup: --socket expects a port, host:port or [ipv6]:port (given: ${JSON.stringify(values.socket)})`)
  }
  // the command line the service runs: the config file by its absolute path, the name, the rest as given
  const args = [
    ...values.config ? ['--config', path.resolve(values.config)] : [],
    ...names.length ? ['--name', names[0]] : [],
    ...after,
  ]
  const invocation = parseCommandLine(args)
  const config = await loadConfigOnce({ cwd: process.cwd(), env: process.env, file: invocation.values.config ?? true, flags: flagLayer(invocation) })
  const { serviceUnit, socketUnit } = await import('./upgrade/unit.js')
  const facts = {
    name: config.name,
    user: values.user ?? os.userInfo().username,
    workingDirectory: process.cwd(),
    node: process.execPath,
    cli: fs.realpathSync(fileURLToPath(import.meta.url)),
    args,
    shutdownDelayMs: config.shutdownDelayMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    socket: values.socket,
    printedBy: ['cluster-run', 'startup', ...argv.filter((a) => a !== '--socket-unit')].map(shellWord).join(' '),
  }
  return print((values['socket-unit'] ? socketUnit(facts) : serviceUnit(facts)).trimEnd())
}

/** A word as a shell reads it back. */
function shellWord (text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, "'\\''")}'`
}

function print (text: string): number {
  process.stdout.write(text + '\n')
  return 0
}

/** Set by the CLI's bundle build, from package.json. */
declare const CLUSTER_RUN_VERSION: string | undefined

function readVersion (): string {
  if (typeof CLUSTER_RUN_VERSION === 'string') return CLUSTER_RUN_VERSION
  return JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`cluster-run: ${err.message}\nRun "cluster-run --help" for usage.\n`)
    } else if (err instanceof ConfigError || err instanceof StartError) {
      process.stderr.write(`cluster-run: ${err.message}\n`)
    } else if (!(err instanceof ClusterError)) {
      // ClusterError was already logged as events; anything else is a bug of ours.
      process.stderr.write(`cluster-run: ${(err as Error)?.stack ?? String(err)}\n`)
    }
    process.exit((err as { exitCode?: number })?.exitCode ?? 1)
  }
)
