// The CLI's config loading: in a worker thread that ends once the config is read
// (see thread.ts), at start and at every reload.
import path from 'node:path'
import { Worker } from 'node:worker_threads'
import { ConfigError } from '../errors.js'
import type { ConfigSources } from './index.js'
import { loadConfigModule } from './module.js'
import type { Config } from './schema.js'
import type { ThreadReply } from './thread.js'

/** Set by the CLI's bundle build: where the thread's entry is from the bundle. */
declare const CLUSTER_RUN_CONFIG_THREAD: string | undefined

function threadUrl (): URL {
  if (typeof CLUSTER_RUN_CONFIG_THREAD === 'string') return new URL(CLUSTER_RUN_CONFIG_THREAD, import.meta.url)
  return new URL(`./thread${path.extname(new URL(import.meta.url).pathname)}`, import.meta.url)
}

export async function loadConfigOnce (sources: ConfigSources): Promise<Config> {
  const worker = new Worker(threadUrl(), { workerData: sources })
  let reply: ThreadReply
  try {
    reply = await new Promise<ThreadReply>((resolve, reject) => {
      worker.once('message', resolve)
      worker.once('error', reject)
      worker.once('exit', (code) => reject(new Error(`the config loader stopped (exit code ${code}) before it answered`)))
    })
  } finally {
    void worker.terminate()
  }
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
}
