// The one place that assembles a Config from its layers, for the CLI and run()
// alike: defaults < config file (or run()'s object) < environment < command line.
// Called once at start and again for every reload: the file is read anew each time.
import fs from 'node:fs'
import os from 'node:os'
import { availableCpus } from '../cpu-count.js'
import { ConfigError } from '../errors.js'
import { loadConfigFile } from './load.js'
import { envLayer, resolveConfig, type Layer } from './resolve.js'
import type { Config } from './schema.js'
import { controlDir, nearestPackageName } from '../control/paths.js'

export interface ConfigSources {
  /** the directory the config file is searched in and relative paths resolve from */
  cwd: string
  env: Record<string, string | undefined>
  /** search for a config file (true), load this one (a path), or read none (false) */
  file: boolean | string
  /** values given in code (run()'s argument): they rank as a config file does */
  values?: Record<string, unknown>
  /** the command line, the last layer */
  flags?: Layer
}

export async function loadConfig (sources: ConfigSources): Promise<Config> {
  const layers: Layer[] = []
  let configFile: string | undefined
  if (sources.file !== false) {
    const file = await loadConfigFile(sources.cwd, typeof sources.file === 'string' ? sources.file : undefined)
    configFile = file?.filepath
    layers.push({ source: file?.filepath ?? 'config file', values: file?.config ?? {} })
  }
  if (sources.values) layers.push({ source: 'run()', values: { ...sources.values } })
  layers.push(envLayer(sources.env))
  if (sources.flags) layers.push(sources.flags)
  if (!layers.some((l) => l.values.app !== undefined)) {
    throw new ConfigError('No app to run', ['app: expected the entry file, as the first argument or the "app" key of a config file (given: nothing)'])
  }
  return resolveConfig({
    layers,
    cwd: sources.cwd,
    configFile,
    cpus: () => availableCpus(),
    fileExists: (file) => fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false,
    packageName: nearestPackageName,
    controlDir: controlDir(sources.env, os.homedir()),
  })
}
