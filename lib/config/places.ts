// Where a config file is searched for, in order (cosmiconfig's search places), and
// which of them name a hook in their own text: light enough for the CLI to ask before
// it decides who reads the config.
import fs from 'node:fs'
import path from 'node:path'

const MODULE = 'cluster'

export const SEARCH_PLACES = [
  'package.json',
  `.${MODULE}rc`,
  `.${MODULE}rc.json`,
  `.${MODULE}rc.yaml`,
  `.${MODULE}rc.yml`,
  `.${MODULE}rc.js`,
  `.${MODULE}rc.cjs`,
  `.${MODULE}rc.mjs`,
  `.${MODULE}rc.ts`,
  `${MODULE}.config.ts`,
  `${MODULE}.config.mts`,
  `${MODULE}.config.cts`,
  `${MODULE}.config.js`,
  `${MODULE}.config.mjs`,
  `${MODULE}.config.cjs`,
  `${MODULE}.config.json`,
]

/** The key of a config in package.json. */
export const PACKAGE_KEY = MODULE

const MODULE_FILE = /\.[mc]?[jt]s$/
const HOOK = /\bon(?:WorkerFork|WorkerReady|WorkerExit|Reload|Shutdown|PrimaryStart)\b/

/**
 * Whether the config file that would be read (`file`, else the first search place in
 * `cwd` that exists) is a JS or TypeScript module whose text names a hook. Hooks are
 * functions: they run in the primary, so such a file is read there.
 */
export function namesHooks (cwd: string, file: boolean | string): boolean {
  const candidates = typeof file === 'string' ? [path.resolve(cwd, file)] : file ? SEARCH_PLACES.map((place) => path.join(cwd, place)) : []
  for (const candidate of candidates) {
    let text: string
    try {
      text = fs.readFileSync(candidate, 'utf8')
    } catch {
      continue
    }
    return MODULE_FILE.test(candidate) && HOOK.test(text)
  }
  return false
}
