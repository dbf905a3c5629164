// The running cluster as run() hands it over: exactly the documented methods, and every
// event emitted by its name (and as 'event'). The supervisor behind it stays private.
import { EventEmitter } from 'node:events'
import type { ReloadOutcome } from './common/lifecycle.js'
import type { Config } from './config/schema.js'
import type { AnyEvent, EventFields, EventName } from './supervisor/events.js'
import type { ClusterStatus, WorkerStatus } from './supervisor/status.js'
import type { Supervisor } from './supervisor/supervisor.js'

type Listener<K extends EventName | 'event'> = (fields: K extends EventName ? EventFields[K] : AnyEvent) => void

export interface ClusterHandle {
  /** the config the cluster runs, as resolved from its sources (the last reload's) */
  readonly config: Config
  /** resolves with the exit code once the cluster has stopped */
  readonly exited: Promise<number>
  /** every worker process, by slot: what status() lists as members */
  workers: () => WorkerStatus[]
  /** the object `GET /status` answers, from what the primary holds */
  status: () => ClusterStatus
  /** replaces every worker after re-reading the config: the new ones start beside the old, which drain once all are ready */
  reload: () => Promise<ReloadOutcome>
  /** sets the number of workers (at least 1) */
  scale: (workers: number) => void
  /** drains every worker and stops; resolves with the exit code */
  stop: () => Promise<number>
  on: <K extends EventName | 'event'>(event: K, listener: Listener<K>) => this
  once: <K extends EventName | 'event'>(event: K, listener: Listener<K>) => this
  off: <K extends EventName | 'event'>(event: K, listener: Listener<K>) => this
}

/** A handle on `supervisor`; `connect` is given the function that publishes its events. */
export function clusterHandle (supervisor: Supervisor, connect: (publish: (event: AnyEvent) => void) => void): ClusterHandle {
  const events = new EventEmitter()
  connect((e) => {
    const { event, ...fields } = e
    events.emit(event, fields)
    events.emit('event', e)
  })
  const handle: ClusterHandle = {
    get config () { return supervisor.config },
    get exited () { return supervisor.exited },
    workers: () => supervisor.status().members,
    status: () => supervisor.status(),
    reload: () => supervisor.reload(),
    scale: (workers) => supervisor.scale(workers),
    stop: () => supervisor.stop(),
    on: (event, listener) => { events.on(event, listener as (...args: unknown[]) => void); return handle },
    once: (event, listener) => { events.once(event, listener as (...args: unknown[]) => void); return handle },
    off: (event, listener) => { events.off(event, listener as (...args: unknown[]) => void); return handle },
  }
  return handle
}
