// The control socket's directory: created owner-only, or refused unless it is.
import fs from 'node:fs'
import path from 'node:path'

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
