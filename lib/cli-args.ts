// The command line: parsed by node:util parseArgs, turned into the last config layer.
import { parseArgs } from 'node:util'
import { numberOrString, type Layer } from './config/layer.js'
import { UsageError } from './common/errors.js'
import { closest, usageOf } from './common/issues.js'

/** The client commands (control/commands.ts runs them). */
export const COMMANDS = new Set(['ls', 'status', 'top', 'reload', 'scale', 'stop', 'upgrade', 'logs', 'startup'])

/** What PM2 users type, and what does it here. */
const PM2_WORDS: Record<string, string> = {
  list: 'ls',
  monit: 'top',
  restart: 'reload',
  delete: 'stop',
  kill: 'stop',
  start: 'cluster-run <entry>',
}

/**
 * A first argument that is neither a command nor an existing file, and looks like a
 * word (no dot, no slash): a mistyped or unknown command, not an entry file.
 */
export function unknownCommand (word: string | undefined, exists: (file: string) => boolean): UsageError | undefined {
  if (word === undefined || COMMANDS.has(word) || !/^[a-z][a-z0-9-]*$/i.test(word) || exists(word)) return undefined
  const instead = PM2_WORDS[word.toLowerCase()]
  const near = instead ? undefined : closest(word, [...COMMANDS])
  const hint = instead ? `: use "cluster-run ${instead}"` : near ? `: did you mean "${near}"?` : ''
  return new UsageError(`unknown command "${word}"${hint} (commands: ${[...COMMANDS].join(', ')}; an entry file "${word}" does not exist either)`)
}

export const COMMANDS_HELP = `Commands (to a running cluster of this user, through its control socket):
  cluster-run ls                      every cluster: name, pid, workers, uptime, app
  cluster-run status [name]           the workers and their figures (--watch: as top)
  cluster-run top [name]              the workers, their requests per second over the last
                                      minutes, the latest events and log lines, every second
                                      (q or Ctrl-C quits; without a terminal: status, once)
  cluster-run reload [name]           zero-downtime reload; waits; exit 0 complete, 1 aborted
  cluster-run scale [name] <n|+n|-n>  set, add or remove workers
  cluster-run stop [name]             graceful stop; waits; exits with the primary's exit code
  cluster-run upgrade [name]          replace the primary itself (a new Node or cluster-run) with no
                                      refused connection (--node <path>: its binary); waits;
                                      exit 0 complete, 1 aborted (the old primary serves on)
  cluster-run logs [name]             the workers' last lines (-n 50); -f follows; --worker <id>,
                                      --stdout or --stderr, --events (the primary's too), --json;
                                      --reopen reopens the log files
  cluster-run startup [name]          print a systemd service unit for the app here (--user <u>;
                                      --socket [host:]port: with a socket unit, --socket-unit
                                      prints it; cluster-run's arguments after --)
  The name may be left out when exactly one cluster runs.
  --json  machine-readable output   --socket <path>  a socket set by controlSocket
  --timeout <s>  how long to wait (default 5; reload and stop: 600)`

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  workers: { type: 'string', short: 'w' },
  name: { type: 'string', short: 'n' },
  'metrics-port': { type: 'string' },
  'scheduling-policy': { type: 'string' },
  'log-level': { type: 'string' },
  pretty: { type: 'boolean' },
  check: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const

interface Invocation {
  entry?: string
  appArgs?: string[]
  values: { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean }
}

export function parseCommandLine (argv: string[]): Invocation {
  let parsed
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true, tokens: true })
  } catch (err) {
    throw usageOf(err, OPTIONS)
  }
  const terminator = parsed.tokens.find((t) => t.kind === 'option-terminator')?.index ?? Infinity
  const before = parsed.tokens.filter((t) => t.kind === 'positional' && t.index < terminator).map((t) => (t as { value: string }).value)
  const after = parsed.tokens.filter((t) => t.kind === 'positional' && t.index > terminator).map((t) => (t as { value: string }).value)
  if (before.length > 1) {
    throw new UsageError(`Unexpected argument "${before[1]}": pass arguments for the app after "--"`)
  }
  return { entry: before[0], appArgs: terminator === Infinity ? undefined : after, values: parsed.values }
}

/** The command line as the last config layer. */
export function flagLayer ({ entry, appArgs, values }: Invocation): Layer {
  const log: Record<string, unknown> = {}
  if (values['log-level'] !== undefined) log.level = values['log-level']
  if (values.pretty) log.pretty = true
  return {
    source: 'command line',
    values: {
      app: entry,
      args: appArgs,
      workers: values.workers === undefined ? undefined : numberOrString(values.workers),
      schedulingPolicy: values['scheduling-policy'],
      name: values.name,
      metrics: values['metrics-port'] === undefined ? undefined : { port: numberOrString(values['metrics-port']) },
      log: Object.keys(log).length ? log : undefined,
    },
  }
}
