// Every event of the cluster in one table: its fields, the level it is logged at, and
// the hook it runs. The planner's emits, the logger, the run() handle's on() and the
// hooks all take their types from here; an event without a row does not compile.
import type { DrainCause, ExitReason, ExitRecord, HookFacts, HookName, Warning } from '../common/lifecycle.js'
import type { Config } from '../config/schema.js'
import { exitLevel } from './exit-reason.js'

export type Level = 'info' | 'warn' | 'error' | 'fatal'

/** The fields of each event, as the log line and the run() handle's listeners get them. */
export interface EventFields {
  'primary.start': {
    /** the primary's */
    pid: number
    workers: number
    workersReason: string
    schedulingPolicy: Config['schedulingPolicy']
    app: string
    appSource: string
    configFile: string | null
    node: string
    name: string
    controlSocket: string | false
    metrics: string | null
    /** the dashboard's URL, and the file of the token its actions need, or why it is read-only */
    dashboard?: { url: string, tokenFile?: string, readOnly?: string }
    /** an upgrade's new primary: the pid of the primary it replaces */
    upgradedFrom?: number
    /** reuseport: whether the kernel moves a closing listener's queue to the others (net.ipv4.tcp_migrate_req; null: no such setting) */
    tcpMigrateReq?: boolean | null
  }
  'config.warning': Warning
  'worker.fork': { workerId: number, pid: number, generation: number }
  'worker.listening': { workerId: number, pid: number, address: string }
  'worker.listen-failed': { workerId: number, pid: number, address: string, code: string, message: string }
  'worker.ready': { workerId: number, pid: number, generation: number, startMs: number }
  'worker.drain': { workerId: number, pid: number, reason: DrainCause, inflight: number | null, connections: number | null }
  'worker.killed': { workerId: number, pid: number, afterMs: number, connectionsDestroyed?: number }
  'worker.hung': { workerId: number, pid: number, heartbeatAgeMs: number, timeoutMs: number }
  'worker.recycle':
  | { workerId: number, pid: number, reason: 'memory', rssMb: number, maxMemoryMb: number }
  | { workerId: number, pid: number, reason: 'max-requests', requests: number, limit: number }
  | { workerId: number, pid: number, reason: 'asked' }
  'worker.exit': {
    workerId: number
    pid: number
    code: number | null
    signal: string | null
    uptimeMs: number
    expected: boolean
    reason: ExitReason
    /** why it was drained, if it was */
    cause?: DrainCause
    possibleOom?: true
    /** what it still had open as it exited, when anything */
    inflight?: number
    connections?: number
    /** still open at the drain's deadline */
    connectionsDestroyed?: number | null
    /** a crash, a hang, a failed start: the last lines the worker wrote to stderr */
    stderr?: string[]
  }
  'worker.restart': { workerId: number, delayMs: number, attempt: number }
  'crash-rate.exceeded': { crashes: number, windowMs: number, lastExits: ExitRecord[] }
  'boot.failed': {
    crashes: number
    windowMs: number
    lastExits: ExitRecord[]
    cause: 'crash-rate' | 'stop-code' | 'listen-failed'
    message: string
    address?: string
    code?: string
    /** the last lines of the culprit's stderr */
    stderr: string[]
  }
  'shutdown.start': { signal: string, workers: number, fast?: true, delayMs?: number }
  'shutdown.complete': { signal: string, durationMs: number, exitCode: number, killed: number, cut: number }
  'reload.start': { generation: number, workers: number }
  'reload.complete': { generation: number, durationMs: number }
  'reload.aborted': { reason: string, error?: string, issues?: string[], stderr?: string[] }
  'reload.queued': Record<string, never>
  'reload.ignored': { reason: string }
  scale: { from: number, to: number }
  'hook.error': { hook: HookName, error: string }
  'log.reopened': { files: string[] }
  'log.reopen-failed': { error: string }
  /** the old primary started a new one (`node`: its binary, `version`: its Node) */
  'upgrade.start': { pid: number, node: string, version: string }
  /** every worker of the new primary is ready and it took the sockets over: this primary drains and exits */
  'upgrade.complete': { pid: number, node: string, durationMs: number }
  /** the new primary failed; this one serves on */
  'upgrade.aborted': { reason: string, durationMs: number }
  'upgrade.refused': { reason: string }
  /** a listening socket this primary was given: by the primary it replaces, or by systemd (socket activation) */
  'socket.inherited': { address: string, from: 'upgrade' | 'systemd', name?: string }
  /** an inherited socket that no listen of the apps asked for, once every worker was ready (closed) */
  'socket.unused': { address: string, from: 'upgrade' | 'systemd' }
  /** systemd could not be told (systemd-notify missing or failing): said once */
  'systemd.notify-failed': { error: string }
  /** a descriptor systemd passed that is not a TCP socket to listen on (left alone) */
  'socket.skipped': { fd: number, name?: string, reason: string }
}

export type EventName = keyof EventFields

/** An event with its name, as the handle's 'event' listeners get it. */
export type AnyEvent = { [K in EventName]: { event: K } & EventFields[K] }[EventName]

/** A hook and what it is told. */
type HookCall = { [H in HookName]: [H, HookFacts[H]] }[HookName]

interface Row<K extends EventName> {
  level: Level | ((fields: EventFields[K]) => Level)
  hook?: (fields: EventFields[K]) => HookCall | undefined
}

const EVENTS: { [K in EventName]: Row<K> } = {
  'primary.start': { level: 'info' },
  'config.warning': { level: 'warn' },
  'worker.fork': { level: 'info', hook: ({ workerId, pid }) => ['onWorkerFork', { workerId, pid }] },
  'worker.listening': { level: 'info' },
  'worker.listen-failed': { level: 'error' },
  'worker.ready': { level: 'info', hook: ({ workerId, pid }) => ['onWorkerReady', { workerId, pid }] },
  'worker.drain': { level: 'info' },
  'worker.killed': { level: 'warn' },
  'worker.hung': { level: 'error' },
  'worker.recycle': { level: 'info' },
  'worker.exit': {
    level: ({ reason }) => exitLevel(reason),
    hook: ({ workerId, pid, code, signal, reason }) => ['onWorkerExit', { workerId, pid, code, signal, reason }],
  },
  'worker.restart': { level: 'info' },
  'crash-rate.exceeded': { level: 'fatal' },
  'boot.failed': { level: 'fatal' },
  'shutdown.start': { level: 'info', hook: ({ signal, fast }) => fast ? undefined : ['onShutdown', { signal }] },
  'shutdown.complete': { level: 'info' },
  'reload.start': { level: 'info', hook: ({ generation }) => ['onReload', { generation }] },
  'reload.complete': { level: 'info' },
  'reload.aborted': { level: 'error' },
  'reload.queued': { level: 'info' },
  'reload.ignored': { level: 'info' },
  scale: { level: 'info' },
  'hook.error': { level: 'error' },
  'log.reopened': { level: 'info' },
  'log.reopen-failed': { level: 'error' },
  'upgrade.start': { level: 'info' },
  'upgrade.complete': { level: 'info' },
  'upgrade.aborted': { level: 'error' },
  'upgrade.refused': { level: 'warn' },
  'socket.inherited': { level: 'info' },
  'socket.unused': { level: 'warn' },
  'socket.skipped': { level: 'warn' },
  'systemd.notify-failed': { level: 'warn' },
}

/** The level an event is logged at. */
export function levelOf<K extends EventName> (event: K, fields: EventFields[K]): Level {
  const { level } = EVENTS[event] as Row<K>
  return typeof level === 'function' ? level(fields) : level
}

/** The hook an event runs, and what it is told, if any. */
export function hookOf<K extends EventName> (event: K, fields: EventFields[K]): HookCall | undefined {
  return (EVENTS[event] as Row<K>).hook?.(fields)
}

/**
 * An event as the planner emits it: without what the applier adds, the worker's pid
 * (`member`) and the culprit's stderr tail (`stderrOf`).
 */
export type Planned<K extends EventName> = Without<EventFields[K], 'pid' | 'stderr'>
type Without<T, F extends PropertyKey> = T extends unknown ? Omit<T, F> : never
export type Emit = { [K in EventName]: { do: 'emit', event: K, fields: Planned<K>, member?: number, stderrOf?: number } }[EventName]
