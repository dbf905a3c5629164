// Loaded into every worker with `--import`, before the user's entry, which then
// runs exactly as under `node <entry>`. It finds the app's servers, drains them
// when the primary asks, and reports heartbeats and readiness.
import { dispatch, isProtocolMessage, type Handlers, type ToPrimary, type ToWorker } from '../protocol/messages.js'
import { readLaunch } from '../protocol/launch.js'
import { privateListen, onStickyListening, onStickyConnection } from './sticky.js'
import { tcpTarget } from './listen-target.js'
import { askForSlotSocket, onSlotSocket, onAdopt, onRelease } from './reuseport.js'
import { workerState } from './state.js'
import { trackServers, drainServers, onListenFailure, inflightRequests, openConnections } from './servers.js'
import { startHeartbeat } from './heartbeat.js'
import { watchForAbandoned } from './abandoned.js'

const state = workerState()
const launch = readLaunch()

function send (message: ToPrimary): void {
  if (process.connected) process.send?.(message)
}

if (process.send && launch) {
  state.supervised = true
  // Read line by line by the primary: writes block while its pipe is full (the primary
  // slows the app down rather than hold its lines), and a write followed at once by
  // process.exit() is not lost (Node's pipes are asynchronous otherwise).
  if (launch.captured) {
    for (const stream of [process.stdout, process.stderr]) {
      (stream as unknown as { _handle?: { setBlocking?: (blocking: boolean) => void } })._handle?.setBlocking?.(true)
    }
  }
  // Sticky sessions: the primary accepts on the app's port and hands connections over.
  // Reuseport: the app's port is listened on with the socket of this worker's slot.
  trackServers(launch.listens === 'sticky'
    ? (server, args) => { const target = tcpTarget(args); return target && privateListen(server, target, args, send) }
    : launch.listens === 'reuseport'
      ? (server, args) => {
          const target = tcpTarget(args)
          if (!target || exclusive(args)) return undefined
          askForSlotSocket(server, target, args, send)
          return 'deferred'
        }
      : undefined)

  onListenFailure((failure) => send({ clusterRun: 'listen-failed', ...failure }))
  watchForAbandoned(() => { state.abandoned++ })
  // Whatever ends the process (the app's own process.exit() in a signal handler, a
  // crash, the end of a drain), the primary learns what it cut: the write is attempted
  // at once, before the process is gone.
  process.on('exit', () => send({ clusterRun: 'exiting', inflight: inflightRequests(), connections: openConnections() }))

  const fromPrimary: Handlers<ToWorker, [handle: unknown]> = {
    drain: ({ deadlineMs }) => { void drain(deadlineMs) },
    unready: () => { state.unready = true },
    metrics: ({ id }) => { void answerMetrics(id) },
    'sticky-listening': onStickyListening,
    'sticky-conn': (message, handle) => onStickyConnection(message, handle, state.draining),
    'reuseport-socket': (message, handle) => onSlotSocket(message, handle, send),
    'reuseport-adopt': onAdopt,
    'reuseport-release': onRelease,
  }
  process.on('message', (message, handle) => {
    if (isProtocolMessage<ToWorker>(message)) dispatch(fromPrimary, message, handle)
  })

  // Ctrl-C in a terminal signals the whole process group: the primary coordinates
  // the shutdown, so a worker drains instead of dying mid-request. A signal sent to
  // one worker alone drains that worker; the primary replaces it. A SIGTERM (a
  // service manager's stop of the whole group) keeps the shutdown delay as the
  // primary does: not ready, still serving, then the drain; a second one drains now.
  process.on('SIGINT', () => { void drain(launch.shutdownTimeoutMs) })
  let sigterms = 0
  process.on('SIGTERM', () => {
    if (launch.shutdownDelayMs <= 0 || ++sigterms > 1) {
      void drain(launch.shutdownTimeoutMs)
      return
    }
    state.unready = true
    setTimeout(() => { void drain(launch.shutdownTimeoutMs) }, launch.shutdownDelayMs).unref()
  })

  if (launch.heartbeatMs > 0) startHeartbeat(launch.heartbeatMs, launch.requestLimit, send)
}

async function drain (deadlineMs: number): Promise<void> {
  if (state.draining) return
  state.draining = true
  send({ clusterRun: 'draining' })
  state.events.emit('drain')
  const appClosesUpgrades = state.drainHooks.length > 0
  for (const hook of state.drainHooks.splice(0)) {
    try {
      const result = hook()
      if (result instanceof Promise) result.catch((err: unknown) => console.error(err))
    } catch (err) {
      console.error(err)
    }
  }
  // What the deadline ends is reported at once: the primary counts it as a kill.
  const onSwept = (connections: number): void => { if (connections > 0) send({ clusterRun: 'destroyed', connections }) }
  onRelease({})
  await drainServers({ deadlineMs, appClosesUpgrades, onSwept })
  await runShutdownHooks()
  process.exit()
}

async function answerMetrics (id: number): Promise<void> {
  const metrics: unknown[] = []
  for (const source of state.metrics) {
    try {
      metrics.push(...await source.getMetricsAsJSON())
    } catch (err) {
      console.error(err)
    }
  }
  send({ clusterRun: 'metrics', id, metrics })
}

// A hook that hangs is cut short by the primary, which kills the worker at its deadline.
async function runShutdownHooks (): Promise<void> {
  const results = await Promise.allSettled(state.shutdownHooks.splice(0).map(async (hook) => hook()))
  for (const result of results) {
    if (result.status === 'rejected') console.error(result.reason)
  }
}

/** listen({ exclusive: true }): the app binds its own socket; left to Node. */
function exclusive (args: unknown[]): boolean {
  const first = args[0]
  return first !== null && typeof first === 'object' && (first as { exclusive?: unknown }).exclusive === true
}
