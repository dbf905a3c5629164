// The cluster's events of the last minutes, for the dashboard's timeline: the ones a
// person looks for when a chart jumps (forks, exits and why, reloads and how they ended,
// scale, recycles, hangs, crash-rate trips, upgrades), each with a few short fields,
// never a worker's stderr. Bounded by age and by count; the oldest go.

/** The events the timeline shows. */
export const MARKED = new Set([
  'worker.fork', 'worker.exit', 'worker.recycle', 'worker.hung', 'worker.killed',
  'reload.start', 'reload.complete', 'reload.aborted', 'scale',
  'crash-rate.exceeded', 'boot.failed', 'shutdown.start',
  'upgrade.start', 'upgrade.complete', 'upgrade.aborted',
])

/** The fields a mark keeps: short, and nothing an app wrote. */
const KEPT = ['workerId', 'pid', 'generation', 'reason', 'cause', 'code', 'signal', 'expected', 'from', 'to', 'workers', 'durationMs'] as const

export interface Mark {
  time: number
  event: string
  fields: Partial<Record<typeof KEPT[number], string | number | boolean | null>>
}

export class Timeline {
  readonly #marks: Mark[] = []
  readonly #windowMs: number
  readonly #max: number

  constructor (windowMs: number, max: number) {
    this.#windowMs = windowMs
    this.#max = max
  }

  /** The mark for one of the primary's events (its log line's fields), kept if the timeline shows it. */
  add (time: number, line: { event: string, [field: string]: unknown }): Mark | undefined {
    const { event } = line
    if (!MARKED.has(event)) return undefined
    const fields: Mark['fields'] = {}
    for (const key of KEPT) {
      const value = line[key]
      if (typeof value === 'number' || typeof value === 'boolean' || value === null) fields[key] = value
      else if (typeof value === 'string') fields[key] = value.slice(0, 200)
    }
    const mark = { time, event, fields }
    this.#marks.push(mark)
    this.#trim(time)
    return mark
  }

  /** The marks of the window that ends `now`, oldest first. */
  since (now: number): Mark[] {
    this.#trim(now)
    return [...this.#marks]
  }

  #trim (now: number): void {
    let drop = Math.max(0, this.#marks.length - this.#max)
    while (drop < this.#marks.length && now - this.#marks[drop].time > this.#windowMs) drop++
    if (drop) this.#marks.splice(0, drop)
  }
}
