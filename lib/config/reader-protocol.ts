// What the primary and the config reader process (reader.ts) say to each other.
import type { ConfigSources } from './index.js'

/** Where the reader finds its request: in its environment, so none can be lost before it listens. */
export const REQUEST_ENV = 'CLUSTER_RUN_CONFIG_REQUEST'

/** What the primary asks: the sources but the environment, which the reader inherits. */
export type ReaderRequest = Omit<ConfigSources, 'env'>

export type ReaderReply =
  | { ok: true, config: Record<string, unknown>, hooks: string[] }
  | { ok: false, error: { configError: boolean, message: string, issues: string[] } }
