// What `cluster-run top` draws, from what it fetched: the status table with a sparkline
// of each worker's last minutes, then the latest events and log lines, cut to the
// terminal's size. Pure: the command (top.ts) fetches and writes.
import type { ClusterStatus } from '../supervisor/status.js'
import type { Series } from '../dashboard/rings.js'
import { FIGURES } from '../dashboard/rings.js'
import { duration, megabytes } from './units.js'

export interface TopFrame {
  status: ClusterStatus
  /** the seconds top has watched, oldest first (rings.ts) */
  series: Series
  /** the latest events and log lines, oldest first, as text */
  events: string[]
  logs: string[]
  columns: number
  rows: number
}

const BARS = '▁▂▃▄▅▆▇█'

/** A line of bars for the values (null: a space), scaled to their own maximum. */
export function sparkline (values: Array<number | null>, width: number): string {
  const shown = values.slice(-width)
  const max = Math.max(0, ...shown.filter((v): v is number => v !== null))
  const bars = shown.map((v) => v === null ? ' ' : BARS[max === 0 ? 0 : Math.min(BARS.length - 1, Math.floor((v / max) * (BARS.length - 1) + 0.5))])
  return bars.join('').padStart(width)
}

export function renderTop (f: TopFrame): string {
  const { status: s, columns, rows } = f
  const rps = FIGURES.indexOf('requestsPerSecond')
  const cpu = FIGURES.indexOf('cpuPercent')
  const head = [
    s.name, `pid ${s.pid}`, s.schedulingPolicy, s.state, `generation ${s.generation}`, `up ${duration(s.uptimeMs)}`,
    `workers ${s.workers.ready}/${s.workers.desired}`, `crashes ${s.crashes.inWindow} in ${duration(s.crashes.windowMs)}`,
  ].join('  ')
  const cells = s.members.map((m) => {
    const slot = f.series.slots.find((x) => x.workerId === m.workerId)
    const last = (i: number): number | null => {
      const column = slot?.values[i] ?? []
      for (let j = column.length - 1; j >= 0; j--) if (slot!.pid[j] === m.pid) return column[j]
      return null
    }
    const rate = last(rps)
    const load = last(cpu)
    return {
      m,
      text: [String(m.workerId), String(m.pid), m.state, String(m.generation), duration(m.uptimeMs), megabytes(m.rssBytes),
        m.eventLoopDelayMs === null ? '-' : `${m.eventLoopDelayMs} ms`, rate === null ? '-' : String(Math.round(rate)),
        load === null ? '-' : `${Math.round(load)}%`],
      // the slot's line while this process served it
      history: slot && m.state === 'ready' ? slot.values[rps].map((v, j) => slot.pid[j] === m.pid ? v : null) : [],
    }
  })
  const header = ['ID', 'PID', 'STATE', 'GEN', 'UPTIME', 'RSS', 'LOOP', 'REQ/S', 'CPU']
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c.text[i].length)))
  const line = (values: string[]): string => values.map((v, i) => v.padEnd(widths[i])).join('  ')
  const fixed = line(header).length + 2
  const spark = Math.max(0, Math.min(120, columns - fixed))
  const table = [
    `${line(header)}${spark >= 8 ? `  ${'REQUESTS/S, LAST MINUTES'.slice(0, spark)}` : ''}`,
    ...cells.map((c) => `${line(c.text)}${spark >= 8 ? `  ${sparkline(c.history, spark)}` : ''}`),
  ]
  // what is left of the screen goes to the events and the log, half each
  const room = Math.max(0, rows - table.length - 6)
  const events = f.events.slice(-Math.ceil(room / 2))
  const logs = f.logs.slice(-(room - events.length))
  const lines = [head, '', ...table, '', 'EVENTS', ...events, 'LOG', ...logs]
  const footer = 'q or Ctrl-C to quit'
  return [...lines.slice(0, Math.max(0, rows - 1)), footer].map((l) => cut(l, columns)).join('\n')
}

/** An event's log line, as a short line: its time, name and telling fields. */
export function eventText (time: number, text: string): string {
  let fields: Record<string, unknown> | undefined
  try {
    const parsed: unknown = JSON.parse(text)
    if (parsed !== null && typeof parsed === 'object') fields = parsed as Record<string, unknown>
  } catch {}
  if (!fields || typeof fields.event !== 'string') return `${clock(time)} ${text}`
  const told = ['workerId', 'pid', 'reason', 'code', 'signal', 'generation', 'from', 'to', 'workers', 'durationMs']
    .filter((k) => fields[k] !== undefined && fields[k] !== null && typeof fields[k] !== 'object')
    .map((k) => `${k}=${String(fields[k])}`)
  return `${clock(time)} ${fields.event} ${told.join(' ')}`.trimEnd()
}

export function logText (time: number, workerId: number, stream: string, line: string): string {
  return `${clock(time)} w${workerId}${stream === 'stderr' ? '!' : ' '} ${line}`
}

function clock (time: number): string {
  return new Date(time).toTimeString().slice(0, 8)
}

/** At most `columns` characters (control characters shown as spaces: a line cannot move the cursor). */
function cut (text: string, columns: number): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is taken out
  const clean = text.replace(/[\x00-\x1f\x7f]/g, ' ')
  const chars = [...clean]
  return chars.length > columns ? chars.slice(0, Math.max(0, columns - 1)).join('') + '…' : clean
}
