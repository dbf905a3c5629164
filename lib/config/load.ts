// Finds and loads the config file with cosmiconfig; TypeScript files through jiti.
// Every loader failure becomes a ConfigError: cosmiconfig 9 silently ignores a
// loader's ENOENT/EACCES/EISDIR/ENOTDIR during search, which would mean defaults.
import fs from 'node:fs'
import path from 'node:path'
import { cosmiconfig, defaultLoaders, type Loader } from 'cosmiconfig'
import { ConfigError } from '../common/errors.js'
import { loadJsFresh, loadTs } from './module.js'
import { nearestPackageJson } from '../common/package-json.js'
import { PACKAGE_KEY, SEARCH_PLACES } from './places.js'

export interface LoadedConfig {
  config: Record<string, unknown>
  filepath: string
  /** other config files the search found beside it and did not read (only the first one counts) */
  ignored?: string[]
}

/** A config file was found but its loader failed; carries the file. */
class LoaderFailure extends Error {
  constructor (readonly filepath: string, cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause), { cause })
  }
}

// cosmiconfig reads a loader's null as "no config here" and a module's undefined (no
// default export) as an empty file, skips the file, and the search ends in defaults.
// YAML stays exempt: a YAML file of comments only also loads as null.
const MODULE_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'])

function wrap (loader: Loader, ext: string): Loader {
  return async (filepath, content) => {
    let value
    try {
      value = await loader(filepath, content)
    } catch (err) {
      throw new LoaderFailure(filepath, err)
    }
    if ((value === null && ext === '.json') || (value == null && MODULE_EXTENSIONS.has(ext))) {
      throw notAnObject(filepath, value)
    }
    return value
  }
}

function notAnObject (filepath: string, config: unknown): ConfigError {
  const given = config === undefined
    ? 'nothing: no default export'
    : config === null
      ? 'null'
      : Array.isArray(config)
        ? 'an array'
        : typeof config
  return new ConfigError(`Config file ${filepath} must export an object (given: ${given})`)
}

const loaders = Object.fromEntries(Object.entries({
  ...defaultLoaders,
  '.js': loadJsFresh,
  '.mjs': loadJsFresh,
  '.cjs': loadJsFresh,
  '.ts': loadTs,
  '.mts': loadTs,
  '.cts': loadTs,
}).map(([ext, loader]) => [ext, wrap(loader, ext)]))

function explorer () {
  return cosmiconfig(PACKAGE_KEY, { searchPlaces: SEARCH_PLACES, cache: false, loaders })
}

/**
 * Load `file` when given, else search `cwd` for a config. Returns undefined when no
 * config file exists; throws ConfigError when one exists but cannot be used.
 */
export async function loadConfigFile (cwd: string, file?: string): Promise<LoadedConfig | undefined> {
  let result
  try {
    result = file
      ? await explorer().load(path.resolve(cwd, file))
      : await explorer().search(cwd)
  } catch (err) {
    if (err instanceof ConfigError) throw err
    const target = file ? path.resolve(cwd, file) : cwd
    const reason = err instanceof Error ? err.message : String(err)
    const code = (err as NodeJS.ErrnoException)?.code
    if (file && code === 'ENOENT') throw new ConfigError(`Config file not found: ${target}`, [], { cause: err })
    const where = err instanceof LoaderFailure ? err.filepath : target
    throw new ConfigError(`Cannot load config ${where}: ${reason}`, [], { cause: err })
  }
  if (!result || result.isEmpty) {
    if (file) throw new ConfigError(`Config file is empty: ${path.resolve(cwd, file)}`)
    return undefined
  }
  const config = result.config
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw notAnObject(result.filepath, config)
  }
  const ignored = file ? [] : othersBeside(result.filepath)
  return { config, filepath: result.filepath, ...(ignored.length ? { ignored } : {}) }
}

/** The config files in the folder of `used` that the search would have read had `used` not come first (those before it were empty). */
function othersBeside (used: string): string[] {
  const dir = path.dirname(used)
  const places = SEARCH_PLACES.map((place) => path.join(dir, place))
  return places.slice(places.indexOf(used) + 1).filter((candidate) => {
    if (path.basename(candidate) === 'package.json') {
      // only with a "cluster" key is a package.json a config
      const pkg = nearestPackageJson(dir)
      return pkg?.file === candidate && pkg.fields[PACKAGE_KEY] !== undefined
    }
    return fs.statSync(candidate, { throwIfNoEntry: false })?.isFile() ?? false
  })
}
