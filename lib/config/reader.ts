// A child process that loads and validates the config (cosmiconfig, zod, jiti for
// TypeScript), sends the result and ends: the primary, which runs for months, never
// keeps those libraries in memory, nor what a worker thread would leave behind (2 MB
// on Node 20, 13 MB on Node 24). A config's functions (hooks) cannot cross processes:
// a config that has them is read by the primary itself (see once.ts).
import { loadConfig } from './index.js'
import { preferNodeTypeScript } from './module.js'
import { REQUEST_ENV, type ReaderReply, type ReaderRequest } from './reader-protocol.js'
import { ConfigError } from '../common/errors.js'

preferNodeTypeScript()

async function read (request: ReaderRequest): Promise<ReaderReply> {
  try {
    const config = await loadConfig({ ...request, env: process.env })
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

// The primary decides what a signal means (a Ctrl-C reaches the whole process group);
// if the primary goes away, so does the reader.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {})
process.once('disconnect', () => process.exit(1))

// The request comes in the environment, not as a message: one sent before this module
// had loaded and listened would be lost. The config file does not see it.
const request = JSON.parse(process.env[REQUEST_ENV]!) as ReaderRequest
delete process.env[REQUEST_ENV]
void read(request).then((reply) => {
  // exit once the reply is out, whatever the config file left running
  process.send!(reply, () => process.exit(0))
})
