// The framework-neutral core. An adapter calls guard.handle(req, res) first
// thing for every request and either runs the app (undefined), writes the
// returned reply, or hands the returned error to the framework.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { workerState, type WorkerState } from '../worker/state.js'
import { firstExceeded, hasLimits, hasMemoryLimits, type Exceeded, type LimitName, type Readings } from './limits.js'
import { defaultLogger } from './logger.js'
import { LoopTicker, monotonicClock, type Clock, type IdleReader } from './loop-lag.js'
import { UtilizationWindow, ELU_WINDOW_MS, type EluReader } from './loop-utilization.js'
import { MemorySampler, type MemoryReader } from './memory.js'
import { preferredFormat, type BodyFormat } from './negotiate.js'
import { parseOptions, guardOptionsSchema, type GuardOptions, type MiddlewareLogger, type ResolvedGuardOptions } from './options.js'
import { OverloadTracker } from './overload.js'
import {
  healthReply, refusalError, renderRefusals,
  type GuardReply, type HttpError, type RefusalReplies,
} from './responses.js'

type GuardState = 'ok' | 'overloaded' | 'draining'

export interface GuardStats {
  state: GuardState
  /** requests admitted by this guard whose response has not closed yet. */
  inflight: number
  /** requests passed on to the app. */
  admitted: number
  /** requests refused because a limit was exceeded. */
  shed: number
  /** requests refused because the worker is draining. */
  refusedDraining: number
  /** overload episodes started (each logged once as overload.start). */
  overloadEpisodes: number
  /** the current episode: the limit that started it, how long it has lasted, what it shed. */
  overload: { reason: LimitName, value: number, limit: number, durationMs: number, shed: number } | null
}

/** What handle() decided: run the app, send this reply, or pass this error to the framework. */
export type GuardDecision = undefined | GuardReply | HttpError

/** Test seams: a fake clock, fake memory and loop-utilization readings, a private worker state. */
export interface GuardInternals {
  clock?: Clock
  readMemory?: MemoryReader
  /** cumulative loop idle/active time, as performance.eventLoopUtilization() returns it. */
  readUtilization?: EluReader
  /** length of the loop-utilization window, ms. */
  utilizationWindowMs?: number
  state?: WorkerState
  /** tick interval of the loop-lag timer, ms. */
  tickMs?: number
  /** cumulative ms the loop waited for I/O, as performance.nodeTiming.idleTime. */
  readIdle?: IdleReader
  /** told of the guard's loop ticker (none without limits), to drive it by hand */
  onTicker?: (ticker: LoopTicker | undefined) => void
}

/** The seams the next guard is built on (see guardWithSeams). */
let seams: GuardInternals | undefined

/** A guard on these test seams; not part of the package's API (the tests import it from this module). */
export function guardWithSeams (options: GuardOptions | undefined, internals: GuardInternals): Guard {
  seams = internals
  try {
    return new Guard(options)
  } finally {
    seams = undefined
  }
}

function pathOf (url: string): string {
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/** Marks a socket whose first request this guard has seen. */
const SERVED = Symbol('cluster-run.guard.served')

const LIVE = healthReply('ok', false)
const LIVE_DRAINING = healthReply('ok', true)
const READY = LIVE
const NOT_READY_DRAINING = healthReply('draining', true)

export class Guard {
  readonly options: ResolvedGuardOptions
  readonly #state: WorkerState
  readonly #clock: Clock
  readonly #logger: MiddlewareLogger
  readonly #limited: boolean
  readonly #tracker: OverloadTracker
  readonly #ticker: LoopTicker | undefined
  readonly #memory: MemorySampler | undefined
  readonly #utilization: UtilizationWindow | undefined
  readonly #refusals: RefusalReplies
  readonly #delegate: boolean
  readonly #inflight = new Set<ServerResponse>()
  readonly #release: (this: ServerResponse) => void
  readonly #notReadyOverloaded = new Map<LimitName, GuardReply>()
  #admitted = 0
  #refusedDraining = 0
  #closed = false
  // reused on every decision: shedding allocates nothing but what the framework does
  readonly #readings: Readings = { inflight: 0, lagMs: 0, utilization: 0, heapUsed: 0, rss: 0 }
  readonly #exceeded: Exceeded = { reason: 'maxInFlight', value: 0, limit: 0 }
  #lastAccept: string | undefined = undefined
  #lastFormat: BodyFormat = preferredFormat(undefined)

  constructor (input?: GuardOptions) {
    const internals = seams ?? {}
    const options = parseOptions(guardOptionsSchema, input)
    this.options = options
    this.#state = internals.state ?? workerState()
    this.#clock = internals.clock ?? monotonicClock
    this.#logger = options.logger ?? defaultLogger()
    this.#limited = hasLimits(options)
    this.#tracker = new OverloadTracker(options.recoveryMs)
    this.#refusals = renderRefusals(options.retryAfterSeconds)
    this.#delegate = options.errors === 'delegate'
    if (hasMemoryLimits(options)) this.#memory = new MemorySampler(options.memorySampleIntervalMs, internals.readMemory)
    if (options.maxEventLoopUtilization !== undefined) {
      this.#utilization = new UtilizationWindow(internals.utilizationWindowMs ?? ELU_WINDOW_MS, internals.readUtilization)
    }
    // the timer both measures loop lag and ends episodes when no request arrives
    if (this.#limited) this.#ticker = new LoopTicker(this.#onTick, internals.tickMs, this.#clock, internals.readIdle, options.maxEventLoopDelayMs)
    internals.onTicker?.(this.#ticker)
    const inflight = this.#inflight
    this.#release = function (this: ServerResponse) { inflight.delete(this) }
    this.#state.events.on('drain', this.#onDrain)
  }

  /** Decide on one request. Call before the app sees it. */
  handle (req: IncomingMessage, res: ServerResponse): GuardDecision {
    const { livenessPath, readinessPath } = this.options
    const draining = this.#state.draining
    if ((livenessPath !== false || readinessPath !== false) && (req.method === 'GET' || req.method === 'HEAD')) {
      const path = pathOf(req.url ?? '/')
      if (path === livenessPath) return draining ? LIVE_DRAINING : LIVE
      if (path === readinessPath) return this.#readiness(draining || this.#state.unready)
    }
    if (draining) {
      this.#refusedDraining++
      this.#state.refused++
      return this.#refuse('draining', true, req)
    }
    if (this.#limited) {
      const now = this.#clock()
      const exceeded = this.#check(now, this.#inflight.size + 1, this.#lagOf(req, now))
      if (exceeded !== null) {
        const started = this.#tracker.exceeded(now, exceeded)
        if (started !== null) {
          this.#logger.warn({ event: 'overload.start', reason: exceeded.reason, value: exceeded.value, limit: exceeded.limit }, 'overload started')
        }
        this.#tracker.recordShed()
        this.#state.refused++
        return this.#refuse(exceeded.reason, false, req)
      }
      if (this.#tracker.active) this.#settle(now)
    }
    this.#admitted++
    // a response that already closed will not emit 'close' again
    if (!res.destroyed) {
      this.#inflight.add(res)
      res.once('close', this.#release)
    }
    return undefined
  }

  /**
   * The lag a request is judged by. A request on a connection the worker
   * serves already was readable as soon as the loop turned: the lag of this
   * turn (unless the loop is catching up). The first request of a new
   * connection may have waited in the kernel's accept queue
   * (schedulingPolicy 'none') or in the primary ('rr') for as long as the loop
   * has been behind. The socket is marked once per connection.
   */
  #lagOf (req: IncomingMessage, now: number): number {
    const ticker = this.#ticker!
    const socket = req.socket as (IncomingMessage['socket'] & { [SERVED]?: true }) | null | undefined
    if (socket == null || socket[SERVED] !== true) {
      if (socket != null) socket[SERVED] = true
      return ticker.unseen(now)
    }
    return ticker.catchingUp ? ticker.behind(now) : ticker.lag(now)
  }

  stats (): GuardStats {
    const episode = this.#tracker.current
    let state: GuardState = 'ok'
    if (this.#state.draining) state = 'draining'
    else if (episode !== null) state = 'overloaded'
    return {
      state,
      inflight: this.#inflight.size,
      admitted: this.#admitted,
      shed: this.#tracker.shed,
      refusedDraining: this.#refusedDraining,
      overloadEpisodes: this.#tracker.episodes,
      overload: episode === null
        ? null
        : {
            ...episode.start,
            durationMs: Math.round(this.#clock() - episode.since),
            shed: episode.shed,
          },
    }
  }

  /** Stop the timer and the drain listener. Idempotent. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#ticker?.stop()
    this.#state.events.off('drain', this.#onDrain)
  }

  #refuse (reason: LimitName | 'draining', draining: boolean, req: IncomingMessage): GuardReply | HttpError {
    if (this.#delegate) return refusalError(reason, this.options.retryAfterSeconds, draining)
    const replies = draining ? this.#refusals.draining : this.#refusals.overloaded
    return replies[this.#formatFor(req.headers.accept)]
  }

  /** preferredFormat() with the last answer kept: clients of a flood send the same Accept. */
  #formatFor (accept: string | undefined): BodyFormat {
    if (accept !== this.#lastAccept) {
      this.#lastFormat = preferredFormat(accept)
      this.#lastAccept = accept
    }
    return this.#lastFormat
  }

  #readiness (draining: boolean): GuardReply {
    if (draining) return NOT_READY_DRAINING
    if (!this.#limited) return READY
    const now = this.#clock()
    // a probe only looks: it neither starts nor ends an episode; it reports what
    // a new connection would be judged by, so that new traffic goes elsewhere
    const reason = this.#check(now, this.#inflight.size + 1, this.#ticker!.behind(now))?.reason ??
      this.#tracker.current?.latest.reason
    if (reason === undefined) return READY
    let reply = this.#notReadyOverloaded.get(reason)
    if (reply === undefined) {
      reply = healthReply('overloaded', false, reason)
      this.#notReadyOverloaded.set(reason, reply)
    }
    return reply
  }

  /** The first exceeded limit, in an object reused by the next check (copy what you keep). */
  #check (now: number, inflight: number, lagMs: number): Exceeded | null {
    const readings = this.#readings
    readings.inflight = inflight
    readings.lagMs = lagMs
    // measured to this very moment: a request in the middle of a busy stretch sees it
    readings.utilization = this.#utilization?.current() ?? 0
    if (this.#memory !== undefined) {
      const memory = this.#memory.get(now)
      readings.heapUsed = memory.heapUsed
      readings.rss = memory.rss
    }
    return firstExceeded(readings, this.options, this.#exceeded)
  }

  #settle (now: number): void {
    const ended = this.#tracker.clear(now)
    if (ended === null) return
    this.#logger.info({
      event: 'overload.end',
      reason: ended.start.reason,
      durationMs: Math.round(ended.durationMs),
      shed: ended.shed,
    }, 'overload ended')
  }

  readonly #onTick = (now: number, behindMs: number): void => {
    if (!this.#tracker.active) {
      // keep the samples fresh off the request path
      this.#memory?.get(now)
      this.#utilization?.sample()
      return
    }
    const exceeded = this.#check(now, this.#inflight.size + 1, behindMs)
    if (exceeded !== null) this.#tracker.exceeded(now, exceeded)
    else this.#settle(now)
  }

  readonly #onDrain = (): void => {
    // responses already under way still get to finish, but on a connection that closes after them
    for (const res of this.#inflight) {
      if (!res.headersSent) res.setHeader('Connection', 'close')
    }
  }
}

export function createGuard (options?: GuardOptions): Guard {
  return new Guard(options)
}
