// Loads a JS or TypeScript config file as a module, fresh each time. Used by the
// config loader, and by the primary when it needs a config's functions (hooks).
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'

// jiti is loaded only for TypeScript configs: it weighs ~15 MB and ~40 ms in the primary.
let jiti: import('jiti').Jiti | undefined
export async function loadTs (filepath: string): Promise<unknown> {
  jiti ??= (await import('jiti')).createJiti(import.meta.url, { moduleCache: false, fsCache: false })
  return jiti.import(filepath, { default: true })
}

// A reload (SIGHUP) reads the config again: bypass Node's module caches, which
// would hand back the first version of a .js/.mjs/.cjs file forever.
const requireFresh = createRequire(import.meta.url)
let version = 0
export async function loadJsFresh (filepath: string): Promise<unknown> {
  delete requireFresh.cache[filepath]
  const module = await import(`${pathToFileURL(filepath).href}?v=${++version}`)
  return module.default
}

/** The default export of a .js/.mjs/.cjs/.ts/.mts/.cts config file. */
export function loadConfigModule (filepath: string): Promise<unknown> {
  return /\.[mc]?ts$/.test(filepath) ? loadTs(filepath) : loadJsFresh(filepath)
}
