// A worker thread that loads and validates the config (cosmiconfig, zod, jiti for
// TypeScript), posts the result and ends: the primary, which runs for months, never
// keeps those libraries in memory. A config's functions (hooks) cannot cross threads;
// their names are posted and the primary imports them from the file itself.
import { parentPort, workerData } from 'node:worker_threads'
import { loadConfig, type ConfigSources } from './index.js'
import { ConfigError } from '../errors.js'

export type ThreadReply =
  | { ok: true, config: Record<string, unknown>, hooks: string[] }
  | { ok: false, error: { configError: boolean, message: string, issues: string[] } }

async function main (): Promise<ThreadReply> {
  try {
    const config = await loadConfig(workerData as ConfigSources)
    const plain: Record<string, unknown> = {}
    const hooks: string[] = []
    for (const [key, value] of Object.entries(config)) {
      if (typeof value === 'function') hooks.push(key)
      else plain[key] = value
    }
    return { ok: true, config: plain, hooks }
  } catch (err) {
    if (err instanceof ConfigError) {
      return { ok: false, error: { configError: true, message: err.message.split('\n  - ')[0], issues: err.issues } }
    }
    return { ok: false, error: { configError: false, message: (err as Error)?.stack ?? String(err), issues: [] } }
  }
}

parentPort!.postMessage(await main())
