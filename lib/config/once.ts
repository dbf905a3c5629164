// The CLI's config loading, at start and at every reload: in a child process that ends
// once the config is read (see reader.ts), unless the config has hooks. Hooks are
// functions the primary runs, so a config file that names one in its text is read by
// the primary itself: evaluated once, at the cost of cosmiconfig, zod and (for
// TypeScript) jiti staying in the primary's memory.
import { fork } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ConfigError } from '../common/errors.js'
import type { ConfigSources } from './index.js'
import { namesHooks } from './places.js'
import type { Config } from './schema.js'
import { REQUEST_ENV, type ReaderReply, type ReaderRequest } from './reader-protocol.js'

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
  if (namesHooks(sources.cwd, sources.file)) return readHere(sources)
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
    // Hooks that the file's own text does not name (spread in from another module): the
    // reader could not send them, the primary reads the config once more for them.
    if (reply.hooks.length) return readHere(sources, reply.hooks)
    return Object.freeze(reply.config) as unknown as Config
  })
}

async function readHere (sources: ConfigSources, unnamed?: string[]): Promise<Config> {
  const config = await (await import('./index.js')).loadConfig(sources)
  if (!unnamed) return config
  const warning = {
    key: 'configFile',
    message: `the config's hooks (${unnamed.join(', ')}) come from another module, so the config file was read twice: name them in the config file itself (e.g. onReload: hooks.onReload) to have it read once, by the primary`,
  }
  return Object.freeze({ ...config, warnings: [...config.warnings ?? [], warning] })
}
