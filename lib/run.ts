// run(): resolve the config, start a supervisor, wire the process signals to it.
import fs from 'node:fs'
import { availableCpus } from './cpu-count.js'
import type { Config, UserConfig } from './config/schema.js'
import { envLayer, resolveConfig, type Layer } from './config/resolve.js'
import { createLogger } from './log.js'
import { Supervisor } from './supervisor/supervisor.js'

/** The running cluster, as run() returns it. */
export type ClusterHandle = Pick<Supervisor,
  'config' | 'workers' | 'stop' | 'reload' | 'scale' | 'exited' | 'on' | 'once' | 'off'>

/** Resolves the config from its layers, reading the file system and CPU count of now. */
export function resolveFromLayers (layers: Layer[], cwd: string, configFile?: string): Config {
  return resolveConfig({
    layers,
    cwd,
    configFile,
    cpus: () => availableCpus(),
    fileExists: (file) => fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false,
  })
}

/**
 * Starts the cluster. Resolves once every worker is ready; rejects with a
 * ConfigError for an invalid config, a ClusterError when the cluster stops before
 * (an app that fails at boot). Never calls process.exit.
 *
 * `config` ranks like a config file: the environment (CLUSTER_RUN_WORKERS, …) overrides it.
 */
export function run (config: UserConfig): Promise<ClusterHandle> {
  const resolve = async (): Promise<Config> =>
    resolveFromLayers([{ source: 'run()', values: { ...config } }, envLayer(process.env)], process.cwd())
  return startCluster(resolve)
}

/** The start shared by run() and the CLI: `resolve` is called again for every reload. */
export async function startCluster (resolve: () => Promise<Config>): Promise<ClusterHandle> {
  const config = await resolve()
  const supervisor = new Supervisor({ config, log: createLogger(config.log), reloadConfig: resolve })
  const detach = attachSignals(supervisor)
  void supervisor.exited.then(detach)
  await supervisor.start()
  return supervisor
}

/**
 * SIGINT/SIGTERM drain and stop (a second one kills), SIGHUP reloads, SIGTTIN and
 * SIGTTOU add and remove a worker: the signals of gunicorn's arbiter.
 */
function attachSignals (supervisor: Supervisor): () => void {
  const handlers: Partial<Record<NodeJS.Signals, () => void>> = {
    SIGINT: () => void supervisor.stop('SIGINT'),
    SIGTERM: () => void supervisor.stop('SIGTERM'),
    SIGHUP: () => void supervisor.reload(),
    SIGTTIN: () => supervisor.scale(supervisor.config.workers + 1),
    SIGTTOU: () => supervisor.scale(supervisor.config.workers - 1),
  }
  for (const [signal, handler] of Object.entries(handlers)) process.on(signal, handler)
  return () => {
    for (const [signal, handler] of Object.entries(handlers)) process.off(signal, handler)
  }
}
