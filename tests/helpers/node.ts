// Run a TypeScript script in a plain node process (with tsx, not under the
// test's own loaders) and collect what it printed.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { ROOT } from './cli.js'
import { reapLater } from './reap.js'

export interface Ran {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/**
 * Runs `node --import tsx <file> <args>` from the repository root and resolves
 * once it has exited and all its output is read. A deadline, not a sleep: a
 * process still running after `deadlineMs` is killed with SIGKILL (`signal`
 * says so), so one that hangs fails its test instead of the run.
 */
export async function runTs (file: string, args: string[] = [], deadlineMs = 60_000): Promise<Ran> {
  const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  // killed with the test file if it is still running then (a timeout of the file)
  reapLater(child.pid)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const deadline = setTimeout(() => child.kill('SIGKILL'), deadlineMs)
  const [code, signal] = await once(child, 'close') as [number | null, NodeJS.Signals | null]
  clearTimeout(deadline)
  return { code, signal, stdout, stderr }
}
