// The CLI's config loading: in a child process that ends once the config is read
// (see reader.ts), at start and at every reload.
import { fork } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '../errors.js'
import type { ConfigSources } from './index.js'
import { loadConfigModule } from './module.js'
import type { Config } from './schema.js'
import type { ReaderReply, ReaderRequest } from './reader.js'

/** Where the reader finds its request (see reader.ts). */
export const REQUEST_ENV = 'CLUSTER_RUN_CONFIG_REQUEST'

/** Set by the CLI's bundle build: where the reader's entry is from the bundle. */
declare const CLUSTER_RUN_CONFIG_READER: string | undefined

function readerPath (): string {
  if (typeof CLUSTER_RUN_CONFIG_READER === 'string') return fileURLToPath(new URL(CLUSTER_RUN_CONFIG_READER, import.meta.url))
  return fileURLToPath(new URL(`./reader${path.extname(new URL(import.meta.url).pathname)}`, import.meta.url))
}

/**
 * Starts reading the config at once; the promise settles with it. Called before the
 * rest of the primary is loaded, so the reader's start overlaps with that.
 */
export function loadConfigOnce (sources: ConfigSources): Promise<Config> {
  const request: ReaderRequest = { cwd: sources.cwd, file: sources.file, values: sources.values, flags: sources.flags }
  const reader = fork(readerPath(), [], {
    cwd: sources.cwd,
    env: { ...sources.env, [REQUEST_ENV]: JSON.stringify(request) },
    // none of the primary's flags (an --inspect port would clash), and no warning that
    // Node's own TypeScript support is experimental, nor that a package without a "type"
    // holds an ES module (see module.ts); the config file's console output goes where
    // the primary's goes
    execArgv: ['--disable-warning=ExperimentalWarning', '--disable-warning=MODULE_TYPELESS_PACKAGE_JSON'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  return new Promise<ReaderReply>((resolve, reject) => {
    reader.once('message', (reply) => resolve(reply as ReaderReply))
    reader.once('error', reject)
    // 'close', not 'exit': it comes after the IPC channel has delivered everything
    reader.once('close', (code, signal) => reject(new Error(`the config reader stopped (${signal ?? `exit code ${code}`}) before it answered`)))
  }).then(async (reply) => {
    if (!reply.ok) {
      const { configError, message, issues } = reply.error
      throw configError ? new ConfigError(message, issues) : new Error(message)
    }
    const config = reply.config
    if (reply.hooks.length) {
      // The hooks come from the config file: the primary takes them from it.
      const module = await loadConfigModule(config.configFile as string) as Record<string, unknown>
      for (const key of reply.hooks) config[key] = module[key]
    }
    return Object.freeze(config) as unknown as Config
  })
}
