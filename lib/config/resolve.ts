// defaults < config file < environment < CLI flags, then validation. Pure: every
// outside fact (env, CPU count, file existence) is passed in.
import path from 'node:path'
import * as z from 'zod/mini'
import { configSchema, restartBackoffSchema, maxCrashRateSchema, logSchema, rotateSchema, historySchema, metricsSchema, stickySchema, type Config } from './schema.js'
import { ConfigError } from '../common/errors.js'
import { numberOrString, type Layer } from './layer.js'
import { formatIssues } from '../common/issues.js'
import { defaultName, socketPath } from '../common/cluster-paths.js'

export type { Layer } from './layer.js'

export interface ResolveInputs {
  layers: Layer[]
  /** the directory relative paths are resolved from */
  cwd: string
  cpus: () => { count: number, reason: string }
  fileExists: (file: string) => boolean
  configFile?: string
  /** the name of the package.json nearest to a directory, for the default cluster name */
  packageName?: (dir: string) => string | undefined
  /** the directory of control sockets (see control/paths.ts); without it the socket is off unless set */
  controlDir?: string
}

const NESTED = new Set(['restartBackoff', 'maxCrashRate', 'log', 'env', 'metrics', 'sticky'])

/** The environment variables cluster-run reads, as a layer. */
export function envLayer (env: Record<string, string | undefined>): Layer {
  const values: Record<string, unknown> = {}
  if (env.CLUSTER_RUN_WORKERS !== undefined && env.CLUSTER_RUN_WORKERS !== '') {
    values.workers = numberOrString(env.CLUSTER_RUN_WORKERS)
  }
  // Node's own variable for the same setting, honoured the same way.
  const policy = env.CLUSTER_RUN_SCHEDULING_POLICY || env.NODE_CLUSTER_SCHED_POLICY
  if (policy) values.schedulingPolicy = policy
  if (env.CLUSTER_RUN_LOG_LEVEL) values.log = { level: env.CLUSTER_RUN_LOG_LEVEL }
  return { source: 'environment', values }
}

export { numberOrString } from './layer.js'

/** Merge layers: later wins; nested objects merge one level deep. */
export function mergeLayers (layers: Layer[]): { merged: Record<string, unknown>, sources: Map<string, string> } {
  const merged: Record<string, unknown> = {}
  const sources = new Map<string, string>()
  for (const { source, values } of layers) {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) continue
      if (NESTED.has(key) && isPlainObject(value) && isPlainObject(merged[key])) {
        merged[key] = { ...(merged[key] as object), ...value }
        for (const sub of Object.keys(value)) sources.set(`${key}.${sub}`, source)
      } else {
        merged[key] = value
        if (isPlainObject(value)) for (const sub of Object.keys(value)) sources.set(`${key}.${sub}`, source)
      }
      sources.set(key, source)
    }
  }
  return { merged, sources }
}

export function resolveConfig (inputs: ResolveInputs): Config {
  const { merged, sources } = mergeLayers(inputs.layers)
  const result = configSchema.safeParse(merged)
  if (!result.success) {
    throw new ConfigError('Invalid configuration', formatConfigIssues(result.error, merged, sources))
  }
  const parsed = result.data
  const cwd = path.resolve(inputs.cwd, parsed.cwd ?? '.')
  const app = path.resolve(cwd, parsed.app)
  if (!inputs.fileExists(app)) {
    throw new ConfigError('Invalid configuration', [
      `app: the entry file does not exist (given: ${JSON.stringify(parsed.app)}, resolved to ${app}${sources.get('app') ? `, from ${sources.get('app')}` : ''})`,
    ])
  }
  let workers: number
  let workersReason: string
  if (parsed.workers === 'auto') {
    const cpus = inputs.cpus()
    workers = cpus.count
    workersReason = `auto: ${cpus.reason}`
  } else {
    workers = parsed.workers
    workersReason = `set by ${sources.get('workers') ?? 'config'}`
  }
  if (!parsed.log.stdout && !parsed.log.file) {
    throw new ConfigError('Invalid configuration', [`log.stdout: false writes the log nowhere without log.file (given: false${sources.get('log.stdout') ? `, from ${sources.get('log.stdout')}` : ''})`])
  }
  const log = {
    ...parsed.log,
    ...(parsed.log.file ? { file: path.resolve(cwd, parsed.log.file) } : {}),
    ...(parsed.log.errorFile ? { errorFile: path.resolve(cwd, parsed.log.errorFile) } : {}),
  }
  const name = parsed.name ?? defaultName(app, inputs.packageName?.(path.dirname(app)))
  const controlSocket = parsed.controlSocket === undefined
    ? (inputs.controlDir === undefined ? false : socketPath(inputs.controlDir, name))
    : parsed.controlSocket && path.resolve(cwd, parsed.controlSocket)
  return Object.freeze({ ...parsed, log, app, appSource: sources.get('app') ?? 'config', cwd, workers, workersReason, configFile: inputs.configFile, name, controlSocket })
}

const KNOWN_KEYS: Record<string, string[]> = {
  '': Object.keys(configSchema.shape),
  restartBackoff: Object.keys(restartBackoffSchema.shape),
  maxCrashRate: Object.keys(maxCrashRateSchema.shape),
  log: Object.keys(logSchema.shape),
  'log.rotate': Object.keys(rotateSchema.shape),
  'log.history': Object.keys(historySchema.shape),
  metrics: Object.keys(metricsSchema.shape),
  sticky: Object.keys(stickySchema.shape),
}

/** One line per problem: the key path, what was expected, what was given and where from. */
export function formatConfigIssues (error: z.core.$ZodError, input: unknown, sources: Map<string, string>): string[] {
  return formatIssues(error.issues, input, {
    knownKeys: (at) => KNOWN_KEYS[at] ?? [],
    // the layer of the longest prefix that has one (array items have none of their own)
    sourceOf: (path) => {
      for (let n = path.length; n > 0; n--) {
        const source = sources.get(path.slice(0, n).map(String).join('.'))
        if (source && source !== 'defaults') return source
      }
      return undefined
    },
  })
}

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}
