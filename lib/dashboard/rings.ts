// The last minutes of every slot's figures, kept in the primary for the dashboard's
// charts: one sample a second from each worker's latest heartbeat, in rings of fixed
// size made once per slot. Recording a sample allocates nothing, so 15 minutes of 16
// workers cost about half a megabyte however long the cluster runs.
//
// A slot's series follows the worker that serves it: a replacement's figures start
// after the crashed one's, with a gap where the slot had no ready worker. Rates (CPU,
// requests per second) are the difference between two samples of the same process.

import type { ClusterStatus } from '../supervisor/status.js'

/** The figures charted per slot, in the order of `Tick.slots[].values`. */
export const FIGURES = ['cpuPercent', 'rssMb', 'heapMb', 'loopDelayMs', 'requestsPerSecond', 'inflight', 'connections'] as const

/** A ready worker's figures as its latest heartbeat gave them (cumulative counts as such). */
export interface Reading {
  workerId: number
  pid: number
  generation: number
  cpuSeconds: number | null
  rssBytes: number | null
  heapUsedBytes: number | null
  eventLoopDelayMs: number | null
  requests: number | null
  inflight: number | null
  connections: number | null
}

/** One second of the cluster: what a live page is sent, and what a snapshot is made of. */
export interface Tick {
  time: number
  ready: number
  desired: number
  slots: Array<{ workerId: number, pid: number, generation: number, values: Array<number | null> }>
}

/** Every tick kept, oldest first, column by column (uPlot's shape); null where there was no sample. */
export interface Series {
  times: number[]
  ready: Array<number | null>
  desired: Array<number | null>
  slots: Array<{ workerId: number, pid: Array<number | null>, generation: Array<number | null>, values: Array<Array<number | null>> }>
}

const MiB = 1024 * 1024

interface SlotRing {
  pid: Float64Array
  generation: Float32Array
  figures: Float32Array[]
  /** the tick of its latest sample */
  lastTick: number
  /** the process and counts of that sample, for the next one's rates */
  last?: { pid: number, time: number, cpuSeconds: number | null, requests: number | null }
}

export class Rings {
  readonly capacity: number
  readonly #times: Float64Array
  readonly #ready: Float32Array
  readonly #desired: Float32Array
  readonly #slots = new Map<number, SlotRing>()
  /** ticks recorded so far; the next one goes to index #ticks % capacity */
  #ticks = 0

  constructor (capacity: number) {
    this.capacity = capacity
    this.#times = new Float64Array(capacity)
    this.#ready = new Float32Array(capacity)
    this.#desired = new Float32Array(capacity)
  }

  /** Records one tick: the cluster's counts and each ready worker's reading (one per slot). */
  record (time: number, cluster: { ready: number, desired: number }, readings: Reading[]): Tick {
    const at = this.#ticks % this.capacity
    const tick = this.#ticks++
    this.#times[at] = time
    this.#ready[at] = cluster.ready
    this.#desired[at] = cluster.desired
    for (const [workerId, ring] of this.#slots) {
      // a slot with nothing left in the window is forgotten; the others get a gap here
      if (tick - ring.lastTick >= this.capacity) this.#slots.delete(workerId)
      else clear(ring, at)
    }
    const slots: Tick['slots'] = []
    for (const r of readings) {
      let ring = this.#slots.get(r.workerId)
      if (!ring) {
        ring = slotRing(this.capacity)
        this.#slots.set(r.workerId, ring)
      }
      const values = valuesOf(r, ring.last?.pid === r.pid ? ring.last : undefined, time)
      ring.pid[at] = r.pid
      ring.generation[at] = r.generation
      for (let i = 0; i < values.length; i++) ring.figures[i][at] = values[i] ?? NaN
      ring.lastTick = tick
      ring.last = { pid: r.pid, time, cpuSeconds: r.cpuSeconds, requests: r.requests }
      slots.push({ workerId: r.workerId, pid: r.pid, generation: r.generation, values })
    }
    return { time, ready: cluster.ready, desired: cluster.desired, slots }
  }

  /** Every tick kept, oldest first. */
  series (): Series {
    const first = Math.max(0, this.#ticks - this.capacity)
    const indexes = Array.from({ length: this.#ticks - first }, (_, i) => (first + i) % this.capacity)
    // float32 holds 0.1 as 0.10000000149: rounded again to the tenth it was recorded at
    const column = (values: Float32Array | Float64Array): Array<number | null> => indexes.map((i) => Number.isNaN(values[i]) ? null : round(values[i], 1))
    return {
      times: indexes.map((i) => this.#times[i]),
      ready: column(this.#ready),
      desired: column(this.#desired),
      slots: [...this.#slots].sort((a, b) => a[0] - b[0]).map(([workerId, ring]) => ({
        workerId,
        pid: column(ring.pid),
        generation: column(ring.generation),
        values: ring.figures.map(column),
      })),
    }
  }
}

function slotRing (capacity: number): SlotRing {
  return {
    pid: new Float64Array(capacity).fill(NaN),
    generation: new Float32Array(capacity).fill(NaN),
    figures: FIGURES.map(() => new Float32Array(capacity).fill(NaN)),
    lastTick: 0,
  }
}

function clear (ring: SlotRing, at: number): void {
  ring.pid[at] = NaN
  ring.generation[at] = NaN
  for (const figure of ring.figures) figure[at] = NaN
}

/** A reading's figures in FIGURES' order; rates need the same process's previous sample. */
function valuesOf (r: Reading, previous: SlotRing['last'], time: number): Array<number | null> {
  const seconds = previous ? (time - previous.time) / 1000 : 0
  const rate = (now: number | null, before: number | null | undefined): number | null =>
    seconds > 0 && now !== null && before !== null && before !== undefined && now >= before ? (now - before) / seconds : null
  const cpu = rate(r.cpuSeconds, previous?.cpuSeconds)
  return [
    cpu === null ? null : cpu * 100,
    r.rssBytes === null ? null : r.rssBytes / MiB,
    r.heapUsedBytes === null ? null : r.heapUsedBytes / MiB,
    r.eventLoopDelayMs,
    rate(r.requests, previous?.requests),
    r.inflight,
    r.connections,
  ].map((v) => v === null ? null : round(v, 1))
}

function round (value: number, digits: number): number {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}

/** The readings of a status: each slot's serving worker, its oldest ready one (a successor waits beside it until it takes over). */
export function readingsOf (status: ClusterStatus): Reading[] {
  const readings: Reading[] = []
  for (const m of status.members) {
    if (m.state !== 'ready' || readings.some((r) => r.workerId === m.workerId)) continue
    readings.push({
      workerId: m.workerId,
      pid: m.pid,
      generation: m.generation,
      cpuSeconds: m.cpuSeconds,
      rssBytes: m.rssBytes,
      heapUsedBytes: m.heapUsedBytes,
      eventLoopDelayMs: m.eventLoopDelayMs,
      requests: m.requests,
      inflight: m.inflight,
      connections: m.connections,
    })
  }
  return readings
}
