// The client commands: `cluster-run ls | status | top | reload | scale | stop | upgrade`. Each finds
// the cluster's socket, sends one request with a deadline and prints the answer, as a
// table for people or as JSON (--json) for programs.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseArgs } from 'node:util'
import { UsageError } from '../common/errors.js'
import { usageOf } from '../common/issues.js'
import { request, NotRunningError } from './client.js'
import { followLogs, parseLogs } from './logs-command.js'
import { controlDir, socketPath, NAME_PATTERN } from '../common/cluster-paths.js'
import type { ClusterStatus } from '../supervisor/status.js'
import type { UpgradeOutcome } from '../common/lifecycle.js'
import { duration, megabytes } from './units.js'

/** Exit code when no cluster answers (EX_UNAVAILABLE). */
const UNAVAILABLE = 69

export interface Output {
  /** what out() writes to, for a command that streams (logs) or draws (top) */
  stdout: NodeJS.WriteStream
  /** the keys top reads */
  stdin: NodeJS.ReadStream
  out: (text: string) => void
  err: (text: string) => void
  env: Record<string, string | undefined>
  isTTY: boolean
}

class Unavailable extends Error {}

const COMMAND_OPTIONS = {
  json: { type: 'boolean' },
  watch: { type: 'boolean' },
  socket: { type: 'string' },
  timeout: { type: 'string' },
  node: { type: 'string' },
} as const

export async function runCommand (argv: string[], io: Output): Promise<number> {
  const [command, ...args] = argv
  if (command === 'logs') return runLogs(args, io)
  // "scale -1": a negative count is not an option
  const counts = command === 'scale' ? args.filter((a) => /^-\d+$/.test(a)) : []
  const rest = args.filter((a) => !counts.includes(a))
  let parsed
  try {
    parsed = parseArgs({ args: rest, allowPositionals: true, strict: true, options: COMMAND_OPTIONS })
  } catch (err) {
    throw usageOf(err, COMMAND_OPTIONS, `${command}: `)
  }
  const { values } = parsed
  const positionals = [...parsed.positionals, ...counts]
  const waits = command === 'reload' || command === 'stop' || command === 'upgrade'
  const timeoutMs = values.timeout === undefined ? (waits ? 600_000 : 5000) : seconds(values.timeout) * 1000
  const dir = controlDir(io.env, os.homedir())
  try {
    if (command === 'ls') {
      if (positionals.length) throw new UsageError(`ls takes no name (given: ${positionals.join(' ')})`)
      return await list(dir, values.json === true, io)
    }
    let name: string | undefined
    let count: string | undefined
    if (command === 'scale') {
      if (positionals.length === 2) [name, count] = positionals
      else if (positionals.length === 1) [count] = positionals
      else throw new UsageError('scale needs a count: n, +n or -n (e.g. "cluster-run scale shop +2")')
      if (!/^[+-]?\d+$/.test(count!)) throw new UsageError(`scale: expected n, +n or -n (given: ${JSON.stringify(count)})`)
    } else {
      if (positionals.length > 1) throw new UsageError(`${command} takes at most one name (given: ${positionals.join(' ')})`)
      name = positionals[0]
    }
    if (values.watch && command !== 'status') throw new UsageError('--watch goes with status')
    if (values.json && command === 'top') throw new UsageError('top draws a terminal; for JSON, use status --json')
    if (values.node !== undefined && command !== 'upgrade') throw new UsageError('--node goes with upgrade')
    const socket = values.socket ? path.resolve(values.socket) : await find(dir, name)
    const call = (method: 'GET' | 'POST', route: string, body?: unknown) => send(socket, method, route, body, timeoutMs)
    switch (command) {
      case 'top':
      case 'status': {
        if ((command === 'top' || values.watch) && io.isTTY && io.stdin.isTTY) {
          const { top } = await import('./top.js')
          return await top({
            status: () => call('GET', '/status') as Promise<ClusterStatus>,
            events: () => call('GET', '/logs?lines=50&events=only') as Promise<unknown[]>,
            lines: () => call('GET', '/logs?lines=100') as Promise<unknown[]>,
          }, io)
        }
        // without a terminal to redraw, the status once
        const status = await call('GET', '/status') as ClusterStatus
        io.out(values.json ? JSON.stringify(status, null, 2) : formatStatus(status, Date.now()))
        return 0
      }
      case 'reload': {
        const reply = await call('POST', '/reload') as { outcome: string, generation: number, reason?: string }
        if (values.json) io.out(JSON.stringify(reply))
        else io.out(`reload ${reply.outcome}${reply.outcome === 'complete' ? `: generation ${reply.generation}` : ''}${reply.reason ? `: ${reply.reason}` : ''}`)
        return reply.outcome === 'complete' || reply.outcome === 'queued' ? 0 : 1
      }
      case 'scale': {
        const body = /^[+-]/.test(count!) ? { delta: Number(count) } : { workers: Number(count) }
        const reply = await call('POST', '/scale', body) as { from: number, to: number }
        io.out(values.json ? JSON.stringify(reply) : `workers: ${reply.from} → ${reply.to}`)
        return 0
      }
      case 'upgrade': {
        const body = values.node === undefined ? undefined : { node: path.resolve(values.node) }
        const before = await call('GET', '/status') as ClusterStatus
        const reply = await call('POST', '/upgrade', body) as UpgradeOutcome & { exitCode?: number }
        if (values.json) io.out(JSON.stringify({ name: before.name, from: { pid: before.pid, node: before.node }, ...reply }))
        else if (reply.outcome === 'complete') io.out(`upgrade complete: ${before.name} pid ${before.pid} (node ${before.node}) → pid ${reply.pid} (node ${reply.node}) in ${reply.durationMs} ms; the old primary exited with code ${reply.exitCode}`)
        else io.err(`upgrade ${reply.outcome}: ${reply.reason}`)
        return reply.outcome === 'complete' ? 0 : 1
      }
      case 'stop': {
        const before = await call('GET', '/status') as ClusterStatus
        const reply = await call('POST', '/stop') as { exitCode: number }
        io.out(values.json ? JSON.stringify({ name: before.name, pid: before.pid, ...reply }) : `stopped ${before.name} (pid ${before.pid}): exit code ${reply.exitCode}`)
        return reply.exitCode
      }
    }
    throw new UsageError(`unknown command ${command}`)
  } catch (err) {
    if (err instanceof Unavailable) {
      io.err(`cluster-run ${command}: ${err.message}`)
      return UNAVAILABLE
    }
    throw err
  }
}

function seconds (s: string): number {
  const n = Number(s)
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--timeout: expected seconds > 0 (given: ${JSON.stringify(s)})`)
  return n
}

async function send (socket: string, method: 'GET' | 'POST', route: string, body: unknown, timeoutMs: number): Promise<unknown> {
  try {
    const reply = await request(socket, method, route, body, timeoutMs)
    if (reply.status >= 400) throw new Unavailable(`the cluster refused the request (${reply.status}): ${(reply.json as { error?: string })?.error}`)
    return reply.json
  } catch (err) {
    if (err instanceof Unavailable) throw err
    if (err instanceof NotRunningError) throw new Unavailable(`no cluster is running on ${socket}`)
    throw new Unavailable((err as Error).message)
  }
}

interface Found { name: string, socket: string, status?: ClusterStatus, error?: string }

/** Every socket in the directory, each asked for its status (dead ones say so). */
async function survey (dir: string): Promise<Found[]> {
  let files: string[]
  try {
    files = fs.readdirSync(dir).filter((f) => f.endsWith('.sock')).sort()
  } catch {
    return []
  }
  return Promise.all(files.map(async (file): Promise<Found> => {
    const socket = path.join(dir, file)
    const name = file.slice(0, -'.sock'.length)
    try {
      const reply = await request(socket, 'GET', '/status', undefined, 2000)
      return { name, socket, status: reply.json as ClusterStatus }
    } catch (err) {
      return { name, socket, error: err instanceof NotRunningError ? 'dead' : 'no answer' }
    }
  }))
}

async function find (dir: string, name: string | undefined): Promise<string> {
  if (name !== undefined) {
    if (!NAME_PATTERN.test(name)) throw new UsageError(`not a cluster name: ${JSON.stringify(name)}`)
    return socketPath(dir, name)
  }
  const live = (await survey(dir)).filter((f) => f.status)
  if (live.length === 1) return live[0].socket
  if (live.length === 0) throw new Unavailable(`no cluster is running (no live socket in ${dir})`)
  throw new UsageError(`several clusters are running (${live.map((f) => f.name).join(', ')}): name one`)
}

async function list (dir: string, json: boolean, io: Output): Promise<number> {
  const found = await survey(dir)
  if (json) {
    io.out(JSON.stringify(found.map((f) => f.status
      ? { name: f.name, pid: f.status.pid, state: f.status.state, workers: f.status.workers, uptimeMs: f.status.uptimeMs, app: f.status.app, socket: f.socket }
      : { name: f.name, state: f.error, socket: f.socket })))
    return 0
  }
  if (!found.length) {
    io.out(`no cluster is running (no socket in ${dir})`)
    return 0
  }
  io.out(table([
    ['NAME', 'PID', 'WORKERS', 'UPTIME', 'APP'],
    ...found.map((f) => f.status
      ? [f.name, String(f.status.pid), `${f.status.workers.ready}/${f.status.workers.desired}`, duration(f.status.uptimeMs), f.status.app]
      : [f.name, '-', f.error!, '-', f.error === 'dead' ? '(socket of a primary that is gone)' : '(does not answer)']),
  ]))
  return 0
}

function formatStatus (s: ClusterStatus, now: number): string {
  const reload = s.lastReload ? `last reload ${s.lastReload.outcome} ${duration(now - s.lastReload.at)} ago` : 'no reload yet'
  const head = [
    s.name, `pid ${s.pid}`, s.schedulingPolicy, s.state === 'running' ? '' : s.state, `generation ${s.generation}`,
    `up ${duration(s.uptimeMs)}`, `crashes ${s.crashes.inWindow} in ${duration(s.crashes.windowMs)}`, reload,
  ].filter(Boolean).join('  ')
  const rows = s.members.map((m) => [
    String(m.workerId), String(m.pid), m.state, String(m.generation), duration(m.uptimeMs), String(m.restarts),
    megabytes(m.rssBytes), megabytes(m.heapUsedBytes), m.eventLoopDelayMs === null ? '-' : `${m.eventLoopDelayMs} ms`,
    m.accepted === null ? '-' : m.accepted.toLocaleString('en-US'),
    m.requests === null ? '-' : m.requests.toLocaleString('en-US'), m.inflight === null ? '-' : String(m.inflight),
    m.outputLines === null ? '-' : m.outputLines.toLocaleString('en-US'),
  ])
  const missed = s.log.missedByFollowers > 0 ? `\n${s.log.missedByFollowers.toLocaleString('en-US')} log lines missed by slow followers of \`logs -f\`` : ''
  return `${head}\n${table([['ID', 'PID', 'STATE', 'GEN', 'UPTIME', 'RESTARTS', 'RSS', 'HEAP', 'LOOP', 'CONNS', 'REQUESTS', 'INFLIGHT', 'LOG LINES'], ...rows])}${missed}`
}

function table (rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
  return rows.map((r) => r.map((cell, i) => i === r.length - 1 ? cell : cell.padEnd(widths[i])).join('  ')).join('\n')
}

async function runLogs (args: string[], io: Output): Promise<number> {
  const invocation = parseLogs(args)
  const dir = controlDir(io.env, os.homedir())
  try {
    const socket = invocation.socket ? path.resolve(invocation.socket) : await find(dir, invocation.name)
    if (invocation.reopen) {
      await send(socket, 'POST', '/logs/reopen', undefined, 5000)
      io.out(invocation.json ? JSON.stringify({ reopened: true }) : 'log files reopened')
      return 0
    }
    try {
      return await followLogs(socket, invocation, io.stdout)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ECONNREFUSED') throw new Unavailable(`no cluster is running on ${socket}`)
      throw new Unavailable((err as Error).message)
    }
  } catch (err) {
    if (err instanceof Unavailable) {
      io.err(`cluster-run logs: ${err.message}`)
      return UNAVAILABLE
    }
    throw err
  }
}
