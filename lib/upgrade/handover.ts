// The old primary's side of an upgrade: start a new primary with the same command
// line, hand it every listening socket, wait until all its workers are ready, then
// stop accepting and let it take over. Until that moment nothing of the old primary
// has changed: if the new one fails, the old one goes on as before.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import type { UpgradeOutcome } from '../common/lifecycle.js'
import type { Totals } from '../supervisor/plan.js'
import { isUpgradeMessage, UPGRADE_ENV, type FromNew, type FromOld } from './messages.js'
import { closeListenSockets, listenSockets } from './sockets.js'

/** The oldest Node a new primary may run (package.json's engines). */
export const MIN_NODE: readonly [number, number] = [20, 19]

type UpgradeResult = Exclude<UpgradeOutcome, { outcome: 'refused' }>

export interface HandoverOptions {
  /** the node binary of the new primary, and its version (checkNode()) */
  node: string
  version: string
  /** how long the new primary may take to have every worker ready */
  deadlineMs: number
  /** told once the new primary runs, with its pid */
  started: (pid: number) => void
  /** the old primary's totals, carried over when the sockets are */
  totals: () => Totals
  /** settles when this cluster stops: an upgrade not committed by then is abandoned */
  stopping: Promise<unknown>
}

/** The version a node binary reports, or why it cannot be used for a new primary. */
export async function checkNode (file: string): Promise<{ version: string } | { error: string }> {
  try {
    fs.accessSync(file, fs.constants.X_OK)
  } catch (err) {
    return { error: `${file} is not an executable file (${(err as NodeJS.ErrnoException).code})` }
  }
  const version = await new Promise<string | undefined>((resolve) => {
    execFile(file, ['--version'], { timeout: 10_000, env: {} }, (err, stdout) => resolve(err ? undefined : stdout.trim()))
  })
  const m = version === undefined ? null : /^v(\d+)\.(\d+)\.\d+/.exec(version)
  if (!m) return { error: `${file} is not a node binary (it does not print a version for --version)` }
  const [major, minor] = [Number(m[1]), Number(m[2])]
  if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
    return { error: `${file} is node ${version}; cluster-run needs ${MIN_NODE.join('.')} or later` }
  }
  return { version: version! }
}

/** Runs an upgrade to its end: complete (the new primary serves; the caller stops this one) or aborted. */
export async function handOver (options: HandoverOptions): Promise<UpgradeResult> {
  const began = Date.now()
  const aborted = (reason: string): UpgradeResult => ({ outcome: 'aborted', reason, durationMs: Date.now() - began })
  const { node, version } = options

  // The same command line, environment and directory; the new primary's output goes
  // where this one's goes. Not detached: it stays in the process group a terminal's
  // Ctrl-C reaches, and in the service's cgroup.
  const child = spawn(node, [...process.execArgv, ...process.argv.slice(1)], {
    cwd: process.cwd(),
    env: { ...process.env, [UPGRADE_ENV]: String(process.pid) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  if (child.pid === undefined) {
    const error = await new Promise<Error>((resolve) => child.once('error', resolve))
    return aborted(`the new primary could not be started: ${error.message}`)
  }
  const pid = child.pid
  options.started(pid)
  const send = (message: FromOld, handle?: unknown): Promise<void> => new Promise((resolve, reject) => {
    child.send(message, handle as never, (err) => err ? reject(err) : resolve())
  })

  const outcome = await new Promise<'ready' | string>((resolve) => {
    const timer = setTimeout(() => resolve(`the new primary's workers were not all ready within ${options.deadlineMs} ms`), options.deadlineMs)
    const done = (result: string): void => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      resolve(result)
    }
    const onMessage = (message: unknown): void => {
      if (!isUpgradeMessage<FromNew>(message)) return
      switch (message.clusterRunUpgrade) {
        case 'hello':
          void sendSockets(send, options.totals()).catch((err: Error) => done(`the sockets could not be handed over: ${err.message}`))
          return
        case 'ready': return done('ready')
        case 'failed': return done(`the new primary failed to start: ${message.message}`)
      }
    }
    const onExit = (code: number | null, signal: string | null): void => {
      done(`the new primary exited (${signal ?? `code ${code}`}) before its workers were ready`)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
    void options.stopping.then(() => done('the cluster is stopping'))
  })
  if (outcome !== 'ready') {
    await stopChild(child)
    return aborted(outcome)
  }

  // From here on the new primary serves: this one stops accepting (connections still
  // queued on the sockets are the new one's to accept) and hands over its name.
  closeListenSockets()
  const committed = new Promise<void>((resolve) => {
    // the new primary first tells systemd its pid (MAINPID=), which systemd-notify may take up to 10 s for
    const timer = setTimeout(resolve, 15_000)
    child.on('message', (message: unknown) => {
      if (isUpgradeMessage<FromNew>(message) && message.clusterRunUpgrade === 'committed') {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', () => { clearTimeout(timer); resolve() })
  })
  await send({ clusterRunUpgrade: 'commit' }).catch(() => {})
  await committed
  // The new primary lives on by itself.
  if (child.connected) child.disconnect()
  child.unref()
  return { outcome: 'complete', pid, node: version, durationMs: Date.now() - began }
}

async function sendSockets (send: (message: FromOld, handle?: unknown) => Promise<void>, totals: Totals): Promise<void> {
  for (const { address, port, handle, reusePort } of listenSockets()) await send({ clusterRunUpgrade: 'socket', address, port, reusePort }, handle)
  await send({ clusterRunUpgrade: 'sockets-sent', totals })
}

/** A new primary that will not serve: asked to stop (it drains what it started), killed if it lingers. */
async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}
