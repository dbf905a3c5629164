// Loads a JS or TypeScript config file as a module, fresh each time (a reload reads
// the file again), for the config loader.
import { createRequire } from 'node:module'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { packageField } from '../common/package-json.js'

// jiti is loaded only for TypeScript configs: it weighs ~15 MB and ~40 ms in the primary.
let jiti: import('jiti').Jiti | undefined
let nodeTypeScript = false
export async function loadTs (filepath: string): Promise<unknown> {
  if (nodeTypeScript && nodeReadsAsModule(filepath)) {
    try {
      return await loadJsFresh(filepath)
    } catch (err) {
      // what Node's type stripping cannot take (an enum, an import without its extension)
      // fails before the file runs: jiti then loads it as before
      if (!NOT_FOR_NODE.has((err as NodeJS.ErrnoException)?.code ?? '')) throw err
    }
  }
  jiti ??= (await import('jiti')).createJiti(import.meta.url, { moduleCache: false, fsCache: false })
  return jiti.import(filepath, { default: true })
}

const NOT_FOR_NODE = new Set(['ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX', 'ERR_INVALID_TYPESCRIPT_SYNTAX', 'ERR_MODULE_NOT_FOUND', 'ERR_UNKNOWN_FILE_EXTENSION'])

/**
 * Whether Node would load this TypeScript file as an ES module, which is what a config
 * with `import`/`export` needs: `.mts` always; `.ts` unless the nearest package.json says
 * `"type": "commonjs"` (what `npm init -y` writes with npm 11). Node loads a `.cts`, or a
 * `.ts` there, as CommonJS, where stripping keeps an `import` and the file fails ("Cannot
 * use import statement outside a module", after a warning on stderr): jiti, which
 * compiles either syntax, takes those. A `.ts` in a package with no type is detected by
 * its syntax (the reader silences Node's MODULE_TYPELESS_PACKAGE_JSON warning about it).
 */
function nodeReadsAsModule (filepath: string): boolean {
  const ext = path.extname(filepath)
  if (ext === '.mts') return true
  if (ext !== '.ts') return false
  return packageField(path.dirname(filepath), 'type') !== 'commonjs'
}

/**
 * Node 22.18+ / 23.6+ strips TypeScript's types itself, without loading jiti (Node 24:
 * `--check` of the example config 0.44 s instead of 0.57 s). Turned on by the config
 * reader (its own process, whose ExperimentalWarning about it is silenced); run() and
 * the primary keep jiti.
 */
export function preferNodeTypeScript (): void {
  nodeTypeScript = Boolean((process.features as { typescript?: unknown }).typescript)
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
