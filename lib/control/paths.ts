// Where a cluster's control socket lives, and the checks that keep it owner-only.
import fs from 'node:fs'
import path from 'node:path'
import { packageField } from '../package-json.js'

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

export class InsecureDirectoryError extends Error {
  override name = 'InsecureDirectoryError'
}

/**
 * Creates the socket's directory owner-only (0700), or checks that an existing one is
 * a real directory of this user that nobody else can enter; anything else is refused.
 */
export function prepareDirectory (dir: string, uid = process.getuid?.() ?? -1): void {
  fs.mkdirSync(path.dirname(dir), { recursive: true })
  try {
    fs.mkdirSync(dir, { mode: 0o700 })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  const stat = fs.lstatSync(dir)
  if (!stat.isDirectory()) throw new InsecureDirectoryError(`${dir} is not a directory (a symbolic link or a file is refused)`)
  if (uid >= 0 && stat.uid !== uid) throw new InsecureDirectoryError(`${dir} belongs to uid ${stat.uid}, not to this user (uid ${uid})`)
  if ((stat.mode & 0o077) !== 0) {
    throw new InsecureDirectoryError(`${dir} is open to other users (mode ${(stat.mode & 0o777).toString(8)}); make it owner-only: chmod 700 ${dir}`)
  }
}
