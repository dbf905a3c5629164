// systemd's readiness protocol (sd_notify): READY=1 once every worker is ready,
// RELOADING=1 and READY=1 around a reload (Type=notify-reload), STOPPING=1, STATUS=,
// WATCHDOG=1, and MAINPID= from an upgrade's new primary. Node has no unix datagram
// sockets (nodejs/node#29339), so each message is sent by systemd's own
// `systemd-notify`, which waits until systemd has read it: its sender is gone by then
// otherwise, and systemd would not know which unit it came from. That makes
// NotifyAccess=all necessary (the sender is not the main process), which the unit
// that `cluster-run startup` prints sets.
import { execFile } from 'node:child_process'
import type { AnyEvent } from '../supervisor/events.js'

export type Notification = Record<string, string>

/**
 * What systemd is told for an event, if anything (`status`: the worker count line, made
 * only for the events that tell it). A drain for an upgrade is not a stop: the new
 * primary serves on.
 */
export function notificationFor (e: AnyEvent, status: () => string, monotonicUsec: () => bigint): Notification | undefined {
  switch (e.event) {
    case 'reload.start': return { RELOADING: '1', MONOTONIC_USEC: String(monotonicUsec()), STATUS: `reloading: ${status()}` }
    case 'reload.complete':
    case 'reload.aborted':
      return { READY: '1', STATUS: status() }
    case 'shutdown.start': return e.signal === 'upgrade' ? { STATUS: `handing over to a new primary: ${status()}` } : { STOPPING: '1', STATUS: `stopping: ${status()}` }
    case 'worker.ready':
    case 'worker.exit':
    case 'scale':
      return { STATUS: status() }
  }
  return undefined
}

/** The message systemd-notify sends, as its arguments. */
export function notifyArgs (message: Notification): string[] {
  return Object.entries(message).map(([key, value]) => `${key}=${value.replace(/\n/g, ' ')}`)
}

export interface Notifier {
  /** sends after every earlier message, in order */
  send: (message: Notification) => void
  /** resolves once everything sent so far has been read by systemd (or failed) */
  flushed: () => Promise<void>
  /** stops the watchdog */
  close: () => void
}

/**
 * The notifier of a primary started by systemd with NOTIFY_SOCKET, or undefined. A
 * watchdog (WATCHDOG_USEC, for this process or the primary it replaces) is pinged at
 * half its interval, as sd_watchdog_enabled() advises. `failed` is told once, when
 * systemd-notify cannot be run.
 */
export function systemdNotifier (env: NodeJS.ProcessEnv, failed: (error: string) => void, replaces?: number): Notifier | undefined {
  if (!env.NOTIFY_SOCKET) return undefined
  let chain = Promise.resolve()
  let told = false
  /** a status line waiting for its turn: a later one replaces it (a reload of 16 workers is not 32 messages) */
  let status: string | undefined
  const enqueue = (next: () => Notification): void => {
    chain = chain.then(() => new Promise<void>((resolve) => {
      const message = next()
      execFile('systemd-notify', notifyArgs(message), { timeout: 10_000, env: { NOTIFY_SOCKET: env.NOTIFY_SOCKET, PATH: env.PATH } }, (err) => {
        if (err && !told) {
          told = true
          failed(`systemd-notify ${notifyArgs(message).join(' ')}: ${err.message.trim()}`)
        }
        resolve()
      })
    }))
  }
  const send = (message: Notification): void => {
    const keys = Object.keys(message)
    if (keys.length === 1 && keys[0] === 'STATUS') {
      const queued = status !== undefined
      status = message.STATUS
      if (!queued) {
        enqueue(() => {
          const line = status!
          status = undefined
          return { STATUS: line }
        })
      }
      return
    }
    enqueue(() => message)
  }
  const usec = Number(env.WATCHDOG_USEC)
  const watchdogPid = env.WATCHDOG_PID === undefined ? undefined : Number(env.WATCHDOG_PID)
  let watchdog: NodeJS.Timeout | undefined
  if (usec > 0 && (watchdogPid === undefined || watchdogPid === process.pid || watchdogPid === replaces)) {
    watchdog = setInterval(() => send({ WATCHDOG: '1' }), Math.max(1, Math.floor(usec / 2000)))
    watchdog.unref()
  }
  return {
    send,
    flushed: () => chain,
    close: () => clearInterval(watchdog),
  }
}
