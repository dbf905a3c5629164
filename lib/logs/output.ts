// Where the primary's log lines go: its stdout, a file, or both (a separate file for
// errors if asked). Every line arrives whole and is written whole, in order, by this one
// writer: the workers' lines and the primary's own events never tear each other. Files
// rotate by renaming (rotating-file-stream), never by copying and truncating, and can
// be reopened for an outside logrotate (SIGUSR1).
import fs from 'node:fs'
import { createRequire } from 'node:module'
import type { RotatingFileStream } from 'rotating-file-stream'
import { StartError } from '../common/errors.js'

interface FileOptions {
  /** the file's path */
  path: string
  /** rotate when it reaches this many bytes */
  size?: number
  /** rotate every interval ('1d', '12h', '30m', as rotating-file-stream takes it) */
  interval?: string
  /** rotated files kept (file.1 … file.N) */
  keep: number
}

export interface OutputOptions {
  /** write to the primary's stdout */
  stdout: boolean
  file?: FileOptions
  /** warnings, errors and the workers' stderr go here instead of `file` */
  errorFile?: FileOptions
}

interface Target {
  write: (chunk: Buffer | string) => boolean
  once: (event: 'drain', listener: () => void) => unknown
}

/** Files are created readable by their owner and group only. */
const FILE_MODE = 0o640

export class LogOutput {
  readonly #stdout?: NodeJS.WriteStream
  #file?: RotatingFileStream
  #errorFile?: RotatingFileStream
  readonly #options: OutputOptions
  #waiting = 0
  #drained: Array<() => void> = []

  constructor (options: OutputOptions) {
    this.#options = options
    if (options.stdout) {
      // Node's own stdout: a pipe or a terminal is written by libuv at once, without a
      // thread of the pool (sonic-boom's fs.write costs a hand-off per write, and a
      // context switch is dear on a virtual machine); a file synchronously
      this.#stdout = process.stdout
      // a reader that went away: what is left to write goes nowhere, the primary goes on
      this.#stdout.on('error', () => {})
    }
    if (options.file) this.#file = openFile(options.file)
    if (options.errorFile) this.#errorFile = openFile(options.errorFile)
  }

  /**
   * Writes one line (with its newline) where it belongs; false when a destination's
   * buffer is full: the caller waits for onDrain() before writing more.
   */
  write (line: Buffer | string, error: boolean): boolean {
    let ok = true
    if (this.#stdout) ok = this.#to(this.#stdout, line) && ok
    const file = error && this.#errorFile ? this.#errorFile : this.#file
    if (file) ok = this.#to(file, line) && ok
    return ok
  }

  /** Calls `fn` once every destination has taken what it was given. */
  onDrain (fn: () => void): void {
    if (this.#waiting === 0) return fn()
    this.#drained.push(fn)
  }

  /** the destinations whose 'drain' is awaited */
  readonly #full = new Set<Target>()

  #to (target: Target, line: Buffer | string): boolean {
    if (target.write(line) && !this.#full.has(target)) return true
    if (this.#full.has(target)) return false
    this.#full.add(target)
    this.#waiting++
    target.once('drain', () => {
      this.#full.delete(target)
      if (--this.#waiting > 0) return
      for (const fn of this.#drained.splice(0)) fn()
    })
    return false
  }

  /**
   * Closes and opens the files again at their paths, for a logrotate that has moved
   * them away. A file that cannot be opened keeps the old one; the error is thrown.
   */
  reopen (): void {
    const errors: string[] = []
    for (const which of ['file', 'errorFile'] as const) {
      const options = this.#options[which]
      const current = which === 'file' ? this.#file : this.#errorFile
      if (!options || !current) continue
      let next: RotatingFileStream
      try {
        next = openFile(options)
      } catch (err) {
        errors.push((err as Error).message)
        continue
      }
      current.end()
      if (which === 'file') this.#file = next
      else this.#errorFile = next
    }
    if (errors.length) throw new Error(errors.join('; '))
  }

  /** Writes out everything held and closes the files. */
  async close (): Promise<void> {
    const stdout = this.#stdout
    // what is still queued for a pipe is lost at process.exit(): it is waited for
    if (stdout && stdout.writableLength > 0 && !stdout.destroyed) await new Promise<void>((resolve) => stdout.write('', () => resolve()))
    await Promise.all([this.#file, this.#errorFile].map((file) => file && new Promise<void>((resolve) => file.end(resolve))))
  }
}

/** Checks at once that the file can be opened for appending (exit 73 with its path otherwise), then hands it to rotating-file-stream. */
function openFile ({ path, size, interval, keep }: FileOptions): RotatingFileStream {
  try {
    fs.closeSync(fs.openSync(path, 'a', FILE_MODE))
  } catch (err) {
    throw new StartError(`cannot open the log file ${path}: ${(err as Error).message}`, 73)
  }
  // loaded only when a file is asked for: the primary's memory is a target
  const { createStream } = createRequire(import.meta.url)('rotating-file-stream') as typeof import('rotating-file-stream')
  const stream = createStream(path, {
    mode: FILE_MODE,
    rotate: keep,
    ...(size ? { size: `${Math.max(1, Math.ceil(size / 1024))}K` } : {}),
    ...(interval ? { interval } : {}),
  })
  // a write error later on (a disk full) must not crash the primary; it shows in the next reopen
  stream.on('error', () => {})
  return stream
}
