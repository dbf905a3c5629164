// Work for clients that already left. A saturated worker reads a request long after
// its client sent it; a client that gave up meanwhile (a timeout, a Ctrl-C of a load
// test) has closed its connection, but the close sits in the kernel behind the request
// bytes: the request is read, parsed and handed to the app at once, and the close is
// only read on the loop's next turn. So while the loop is saturated, each request waits
// one turn before its handler runs; if its client's close arrived meanwhile, the
// handler never runs (Node's own server would discard the answer anyway: an HTTP/1
// request still unanswered when its connection ends is aborted), and it is counted as
// abandoned. An idle or busy-but-keeping-up worker hands requests on at once.
import { performance } from 'node:perf_hooks'
import type { IncomingMessage } from 'node:http'
import type net from 'node:net'

/** Above this share of time busy (over the last sample) the loop counts as saturated. */
const SATURATED = 0.9
const SAMPLE_MS = 100
/** A turn hands on held requests for at most this long, so that the closes behind them are read soon. */
const TURN_BUDGET_MS = 10

interface Held { server: net.Server, emit: (...args: unknown[]) => boolean, args: unknown[] }

let saturated = false
/** the loop's figures at the start of the current sample */
let last = performance.eventLoopUtilization()
/** read on this turn of the loop: their clients' closes, if any, are not read yet */
let fresh: Held[] = []
/** read on an earlier turn */
let aged: Held[] = []
let next = 0
let scheduled = false
let onAbandoned: () => void = () => {}

/** Starts judging whether the loop is saturated; `abandoned` is told of each request skipped. */
export function watchForAbandoned (abandoned: () => void): void {
  onAbandoned = abandoned
  judgeFromNow()
  setInterval(() => {
    const now = performance.eventLoopUtilization()
    saturated = performance.eventLoopUtilization(now, last).utilization > SATURATED
    last = now
  }, SAMPLE_MS).unref()
}

/** Forgets the loop's past: the app's boot keeps it busy, but leaves no request waiting. */
function judgeFromNow (): void {
  last = performance.eventLoopUtilization()
  saturated = false
}

/** Routes the server's HTTP/1 'request' events through the hold while the loop is saturated (or requests are still held: order is kept). */
export function holdRequests (server: net.Server): void {
  // a worker whose boot took the last sample's time is not saturated once it listens
  server.once('listening', judgeFromNow)
  const emit = server.emit as (...args: unknown[]) => boolean
  server.emit = function (this: net.Server, event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'request' && (saturated || next < aged.length || fresh.length > 0) && (args[0] as IncomingMessage).httpVersionMajor === 1) {
      fresh.push({ server: this, emit, args })
      if (!scheduled) {
        scheduled = true
        setImmediate(handOn)
      }
      return true
    }
    return emit.call(this, event, ...args)
  }
}

/** Runs after the poll phase: hands on what waited a turn, unless its client left, within a budget. */
function handOn (): void {
  scheduled = false
  const started = performance.now()
  while (next < aged.length && performance.now() - started < TURN_BUDGET_MS) {
    const { server, emit, args } = aged[next]
    aged[next++] = undefined as unknown as Held
    const socket = (args[0] as IncomingMessage).socket
    if (socket.destroyed || socket.readableEnded) onAbandoned()
    else emit.call(server, 'request', ...args)
  }
  aged = next < aged.length ? [...aged.slice(next), ...fresh] : fresh
  next = 0
  fresh = []
  if (aged.length > 0) {
    scheduled = true
    setImmediate(handOn)
  }
}
