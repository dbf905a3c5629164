// `cluster-run top [name]` (and `status --watch`): the cluster in a terminal, redrawn
// every second from the control socket: the status table with each worker's requests
// per second over the last minutes, then the latest events and log lines. It draws on
// the terminal's alternate screen and gives it back as it was on q, Ctrl-C or the end.
import { Rings, readingsOf } from '../dashboard/rings.js'
import type { ClusterStatus } from '../supervisor/status.js'
import { renderTop, eventText, logText } from './top-view.js'

/** One line of GET /logs: a worker's line, or one of the primary's events. */
interface LineEnvelope { time: number, workerId: number, stream: string, line: string }
interface EventEnvelope { time: number, event: string }
type Envelope = LineEnvelope | EventEnvelope

export interface TopSource {
  status: () => Promise<ClusterStatus>
  /** the primary's latest events, and the workers' latest lines (GET /logs envelopes) */
  events: () => Promise<unknown[]>
  lines: () => Promise<unknown[]>
}

export interface Terminal {
  stdout: NodeJS.WriteStream
  stdin: NodeJS.ReadStream
}

const EVERY_MS = 1000
/** 3 minutes of seconds: more than the widest terminal shows */
const KEPT_SECONDS = 180
/** a cluster that does not answer for this long is gone */
const GIVE_UP_MS = 10_000

/** Resolves with the exit code: 0 on quit, 69 when the cluster stopped answering. */
export function top (source: TopSource, { stdout, stdin }: Terminal): Promise<number> {
  const rings = new Rings(KEPT_SECONDS)
  let frame: { status: ClusterStatus, events: string[], logs: string[] } | undefined
  let problem = ''
  let answeredAt = Date.now()
  let timer: NodeJS.Timeout | undefined
  let finish!: (code: number) => void
  const done = new Promise<number>((resolve) => { finish = resolve })
  let ended = false

  const draw = (): void => {
    if (ended) return
    const columns = stdout.columns || 80
    const rows = stdout.rows || 24
    const text = frame
      ? renderTop({ ...frame, series: rings.series(), columns, rows })
      : 'waiting for the cluster…'
    const lines = (problem ? `${problem}\n${text}` : text).split('\n').slice(0, rows)
    // home, each line then the rest of it cleared, then everything below: no flicker
    stdout.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\r\n')}\x1b[J`)
  }

  const tick = async (): Promise<void> => {
    try {
      const [status, events, lines] = await Promise.all([source.status(), source.events(), source.lines()])
      answeredAt = Date.now()
      problem = ''
      rings.record(Date.now(), { ready: status.workers.ready, desired: status.workers.desired }, readingsOf(status))
      frame = {
        status,
        events: (events as Envelope[]).filter((e): e is EventEnvelope => 'event' in e).map((e) => eventText(e.time, e.event)),
        logs: (lines as Envelope[]).filter((e): e is LineEnvelope => 'line' in e).map((e) => logText(e.time, e.workerId, e.stream, e.line)),
      }
    } catch (err) {
      // an upgrade moves the socket to the new primary: a moment without an answer
      problem = `no answer: ${(err as Error).message}`
      if (Date.now() - answeredAt > GIVE_UP_MS) return quit(69)
    }
    draw()
    if (!ended) timer = setTimeout(() => { void tick() }, EVERY_MS)
  }

  const onKey = (key: Buffer): void => {
    const k = key.toString('utf8')
    if (k === 'q' || k === 'Q' || k === '\x03') quit(0)
  }
  const onResize = (): void => draw()
  const onSignal = (): void => quit(0)

  function quit (code: number): void {
    if (ended) return
    ended = true
    clearTimeout(timer)
    stdin.off('data', onKey)
    stdout.off('resize', onResize)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (stdin.isTTY) stdin.setRawMode(false)
    stdin.pause()
    // the cursor back, and the screen as it was before
    stdout.write('\x1b[?25h\x1b[?1049l', () => finish(code))
  }

  stdout.write('\x1b[?1049h\x1b[?25l\x1b[2J')
  if (stdin.isTTY) stdin.setRawMode(true)
  stdin.on('data', onKey)
  stdin.resume()
  stdout.on('resize', onResize)
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  draw()
  void tick()
  return done
}
