// The one place that assembles a Config from its layers, for the CLI and run()
// alike: defaults < config file (or run()'s object) < environment < command line.
// Called once at start and again for every reload: the file is read anew each time.
import fs from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { availableCpus } from './cpu-count.js'
import { ConfigError } from '../common/errors.js'
import { loadConfigFile } from './load.js'
import { envLayer, resolveConfig, type Layer } from './resolve.js'
import type { Config } from './schema.js'
import type { Warning } from '../common/lifecycle.js'
import { controlDir, nearestPackageName } from '../common/cluster-paths.js'
import { nearestPackageJson } from '../common/package-json.js'
import { reusePortSupport } from '../common/reuseport.js'

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
  const warnings: Warning[] = []
  let configFile: string | undefined
  if (sources.file !== false) {
    const file = await loadConfigFile(sources.cwd, typeof sources.file === 'string' ? sources.file : undefined)
    configFile = file?.filepath
    layers.push({ source: file?.filepath ?? 'config file', values: file?.config ?? {} })
    if (file?.ignored) {
      warnings.push({ key: 'configFile', message: `using ${file.filepath}; ignoring ${file.ignored.join(', ')} (only the first config file found is read)`, used: file.filepath, ignored: file.ignored })
    }
  }
  if (sources.values) layers.push({ source: 'run()', values: { ...sources.values } })
  layers.push(envLayer(sources.env))
  if (sources.flags) layers.push(sources.flags)
  if (!layers.some((l) => l.values.app !== undefined)) {
    // as `node .` does: the package's "main", else index.js
    const main = packageMain(sources.cwd)
    if (!main) {
      throw new ConfigError('No app to run', [`app: expected the entry file, as the first argument or the "app" key of a config file; ${sources.cwd} has no package.json "main" and no index.js (given: nothing)`])
    }
    layers.unshift({ source: 'package.json "main" (as `node .` runs)', values: { app: main } })
  }
  const config = resolveConfig({
    layers,
    cwd: sources.cwd,
    configFile,
    cpus: () => availableCpus(),
    fileExists: (file) => fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false,
    packageName: nearestPackageName,
    controlDir: controlDir(sources.env, os.homedir()),
  })
  const socketIo = socketIoWithoutSticky(config)
  if (socketIo) warnings.push(socketIo)
  const policy = runnablePolicy(config.schedulingPolicy)
  if (policy.warning) warnings.push(policy.warning)
  return warnings.length ? Object.freeze({ ...config, schedulingPolicy: policy.runs, warnings }) : config
}

/** 'reuseport' where it cannot run falls back to 'rr', and says why: --check shows the policy that will run. */
function runnablePolicy (asked: Config['schedulingPolicy']): { runs: Config['schedulingPolicy'], warning?: Warning } {
  if (asked !== 'reuseport') return { runs: asked }
  const support = reusePortSupport(process.version, process.platform)
  if (support.supported) return { runs: asked }
  return { runs: 'rr', warning: { key: 'schedulingPolicy', message: `schedulingPolicy "reuseport" cannot run here: ${support.reason}; running "rr"`, asked, runs: 'rr' } }
}

/** socket.io's long-polling needs every request of a session on one worker: say so before the first 400. */
function socketIoWithoutSticky (config: Config): Warning | undefined {
  if (config.schedulingPolicy === 'sticky') return undefined
  const pkg = nearestPackageJson(path.dirname(config.app))
  const dependencies = pkg?.fields.dependencies
  if (!dependencies || typeof dependencies !== 'object' || !('socket.io' in dependencies)) return undefined
  return {
    key: 'schedulingPolicy',
    message: `the app depends on socket.io (${pkg!.file}), whose long-polling transport needs every request of a session on the same worker: under "${config.schedulingPolicy}" most clients fail with "400 Session ID unknown". Set schedulingPolicy: 'sticky' (or --scheduling-policy sticky), or have the clients use transports: ['websocket'] only`,
    schedulingPolicy: config.schedulingPolicy,
  }
}

/** What `node .` would run in `dir`: its package.json's "main" (extensions and index.js as require() finds them), else index.js. */
function packageMain (dir: string): string | undefined {
  try {
    return createRequire(path.join(dir, 'package.json')).resolve('./')
  } catch {
    return undefined
  }
}
