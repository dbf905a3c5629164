// Unit tests for lib/supervisor/exit-reason.ts: every branch of classifyExit.
import t from 'tap'
import { classifyExit, exitLevel } from '../lib/supervisor/exit-reason.js'

t.test('drained on request: expected, not a crash', async (t) => {
  t.strictSame(classifyExit({ leaving: 'drained', killedAtDeadline: false, code: 0, signal: null }),
    { reason: 'drained', expected: true, crash: false, possibleOom: false })
  t.strictSame(classifyExit({ leaving: 'drained', killedAtDeadline: false, code: 1, signal: null }),
    { reason: 'drained', expected: true, crash: false, possibleOom: false }, 'a non-zero code while draining is still a drain')
})

t.test('recycled on request: expected, not a crash', async (t) => {
  t.strictSame(classifyExit({ leaving: 'recycled', killedAtDeadline: false, code: 0, signal: null }),
    { reason: 'recycled', expected: true, crash: false, possibleOom: false })
})

t.test('drain-timeout: killed at the deadline', async (t) => {
  t.strictSame(classifyExit({ leaving: 'drained', killedAtDeadline: true, code: null, signal: 'SIGKILL' }),
    { reason: 'drain-timeout', expected: true, crash: false, possibleOom: false }, 'the supervisor sent that SIGKILL: not OOM')
  t.strictSame(classifyExit({ leaving: 'recycled', killedAtDeadline: true, code: null, signal: 'SIGKILL' }),
    { reason: 'drain-timeout', expected: true, crash: false, possibleOom: false })
})

t.test('hung: killed for its heartbeat, counted as a crash', async (t) => {
  t.strictSame(classifyExit({ leaving: 'hung', killedAtDeadline: false, code: null, signal: 'SIGKILL' }),
    { reason: 'hung', expected: false, crash: true, possibleOom: false })
  t.strictSame(classifyExit({ leaving: 'hung', killedAtDeadline: true, code: null, signal: 'SIGKILL' }),
    { reason: 'hung', expected: false, crash: true, possibleOom: false }, 'killedAtDeadline does not turn it into drain-timeout')
})

t.test('not-ready: killed for readiness, counted as a crash', async (t) => {
  t.strictSame(classifyExit({ leaving: 'not-ready', killedAtDeadline: false, code: null, signal: 'SIGKILL' }),
    { reason: 'not-ready', expected: false, crash: true, possibleOom: false })
})

t.test('crashed: exited by itself with a non-zero code', async (t) => {
  t.strictSame(classifyExit({ killedAtDeadline: false, code: 1, signal: null }),
    { reason: 'crashed', expected: false, crash: true, possibleOom: false })
  t.strictSame(classifyExit({ killedAtDeadline: false, code: 137, signal: null }),
    { reason: 'crashed', expected: false, crash: true, possibleOom: false })
  t.strictSame(classifyExit({ killedAtDeadline: false, code: null, signal: null }),
    { reason: 'crashed', expected: false, crash: true, possibleOom: false }, 'no code and no signal: crashed')
})

t.test('exited: code 0 without being asked is unexpected', async (t) => {
  t.strictSame(classifyExit({ killedAtDeadline: false, code: 0, signal: null }),
    { reason: 'exited', expected: false, crash: true, possibleOom: false })
})

t.test('signaled: a signal the supervisor did not send', async (t) => {
  t.strictSame(classifyExit({ killedAtDeadline: false, code: null, signal: 'SIGTERM' }),
    { reason: 'signaled', expected: false, crash: true, possibleOom: false })
  t.strictSame(classifyExit({ killedAtDeadline: false, code: null, signal: 'SIGSEGV' }),
    { reason: 'signaled', expected: false, crash: true, possibleOom: false })
})

t.test('an unsolicited SIGKILL is a possible OOM kill', async (t) => {
  t.strictSame(classifyExit({ killedAtDeadline: false, code: null, signal: 'SIGKILL' }),
    { reason: 'signaled', expected: false, crash: true, possibleOom: true })
})

t.test('leaving: undefined is the same as absent', async (t) => {
  t.strictSame(classifyExit({ leaving: undefined, killedAtDeadline: false, code: 2, signal: null }),
    { reason: 'crashed', expected: false, crash: true, possibleOom: false })
})

t.test('listen-failed: killed because its app could not listen, counted as a crash', async (t) => {
  t.strictSame(classifyExit({ leaving: 'listen-failed', killedAtDeadline: false, code: null, signal: 'SIGKILL' }),
    { reason: 'listen-failed', expected: false, crash: true, possibleOom: false })
})

t.test('drain-cut: asked to drain, exited by itself with requests or connections open', async (t) => {
  t.strictSame(classifyExit({ leaving: 'drained', killedAtDeadline: false, code: 0, signal: null, openAtExit: { inflight: 1, connections: 1 } }),
    { reason: 'drain-cut', expected: true, crash: false, possibleOom: false })
  t.strictSame(classifyExit({ leaving: 'recycled', killedAtDeadline: false, code: 0, signal: null, openAtExit: { inflight: 0, connections: 3 } }),
    { reason: 'drain-cut', expected: true, crash: false, possibleOom: false }, 'idle connections cut count too')
  t.strictSame(classifyExit({ leaving: 'drained', killedAtDeadline: false, code: 0, signal: null, openAtExit: { inflight: 0, connections: 0 } }),
    { reason: 'drained', expected: true, crash: false, possibleOom: false }, 'nothing open: a drain')
  t.strictSame(classifyExit({ leaving: 'drained', killedAtDeadline: true, code: null, signal: 'SIGKILL', openAtExit: { inflight: 2, connections: 2 } }),
    { reason: 'drain-timeout', expected: true, crash: false, possibleOom: false }, 'killed at the deadline wins')
  t.strictSame(classifyExit({ killedAtDeadline: false, code: 1, signal: null, openAtExit: { inflight: 2, connections: 2 } }),
    { reason: 'crashed', expected: false, crash: true, possibleOom: false }, 'not asked to drain: a crash')
})

t.test('exitLevel: errors for crashes and failed starts, warnings for exits that cut work or were not asked for', async (t) => {
  const levels = Object.fromEntries((['drained', 'recycled', 'drain-timeout', 'drain-cut', 'exited', 'crashed', 'signaled', 'hung', 'not-ready', 'listen-failed'] as const).map((r) => [r, exitLevel(r)]))
  t.same(levels, { drained: 'info', recycled: 'info', 'drain-timeout': 'warn', 'drain-cut': 'warn', exited: 'warn', crashed: 'error', signaled: 'error', hung: 'error', 'not-ready': 'error', 'listen-failed': 'error' })
})
