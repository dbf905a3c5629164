// A cluster's name and where its control socket lives: what the config resolves and
// the control commands look up. Paths only; control/directory.ts checks the directory.
import path from 'node:path'
import { packageField } from './package-json.js'

/** A cluster name: also a file name, so no path separators, no leading dot. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/** The longest unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107

/** `$CLUSTER_RUN_HOME`, else `$XDG_RUNTIME_DIR/cluster-run`, else `~/.cluster-run`. */
export function controlDir (env: Record<string, string | undefined>, home: string): string {
  if (env.CLUSTER_RUN_HOME) return path.resolve(env.CLUSTER_RUN_HOME)
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'cluster-run')
  return path.join(home, '.cluster-run')
}

export function socketPath (dir: string, name: string): string {
  return path.join(dir, `${name}.sock`)
}

/**
 * The default name: the app's package name (a scope folded in: `@shop/api` → `shop-api`),
 * else the entry's base name without its extension; either made a valid name.
 */
export function defaultName (app: string, packageName: string | undefined): string {
  const raw = packageName ?? path.basename(app).replace(/\.[^.]*$/, '')
  const name = raw.replace(/^@/, '').replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[._-]+/, '').slice(0, 64)
  return NAME_PATTERN.test(name) ? name : 'app'
}

/** The `name` of the package.json nearest to `dir` (walking up), if any. */
export function nearestPackageName (dir: string): string | undefined {
  return packageField(dir, 'name')
}
