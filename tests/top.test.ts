// `cluster-run top` in a real terminal: tmux runs it in a pane of a given size; the test
// reads the screen (capture-pane), resizes the window and types the keys (send-keys).
import t from 'tap'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import type { Test } from 'tap'
import { startCli, fixture, controlHome, command, CLI, ROOT, FILE_TIMEOUT_MS } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'
import { kill } from './helpers/reap.js'

t.setTimeout(FILE_TIMEOUT_MS)

/** A tmux server of this test's own (its socket name), killed at teardown with whatever runs in it. */
function terminal (t: Test): { tmux: (...args: string[]) => string, screen: (pane: string) => string, exited: (pane: string) => { code: number } | undefined, start: (pane: string, size: [number, number], cmd: string) => void } {
  const server = `cluster-run-top-${process.pid}`
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-run-top-'))
  const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', server, ...args], { encoding: 'utf8' })
  t.teardown(() => {
    try { tmux('kill-server') } catch {}
    fs.rmSync(dir, { recursive: true, force: true })
  })
  return {
    tmux,
    screen: (pane) => tmux('capture-pane', '-p', '-t', pane),
    // { code } once the command in the pane has exited
    exited: (pane) => {
      const file = path.join(dir, pane)
      return fs.existsSync(file) ? { code: Number(fs.readFileSync(file, 'utf8').trim()) } : undefined
    },
    // the command's exit code goes to a file; the pane stays until the test ends
    start: (pane, [x, y], cmd) => { tmux('new-session', '-d', '-s', pane, '-x', String(x), '-y', String(y), `${cmd}; echo $? > ${path.join(dir, pane)}; sleep 600`) },
  }
}

t.test('top: the workers with their requests over time, the events and the log; it follows a resize and quits on q and on Ctrl-C', async (t) => {
  const home = controlHome(t)
  const port = await freePort()
  const cli = startCli(t, [fixture('apps/upgradable.js'), '-w', '2', '-n', 'shop'], { env: { PORT: String(port), HOST: '127.0.0.1', CLUSTER_RUN_HOME: home } })
  await cli.untilReady(2, 60_000)
  const term = terminal(t)
  const top = `CLUSTER_RUN_HOME=${home} ${process.execPath} ${CLI} top shop`
  term.start('a', [120, 32], top)

  const trickle = setInterval(() => { void get(`http://127.0.0.1:${port}/`).catch(() => {}) }, 20)
  t.teardown(() => clearInterval(trickle))
  const rows = (screen: string): string[] => screen.split('\n').filter((l) => /^\d+ +\d+ +ready /.test(l))
  const first = await until(() => {
    const screen = term.screen('a')
    // a worker's row ends with its line of bars once it has served for a few seconds
    return rows(screen).length === 2 && rows(screen).every((r) => /[▂▃▄▅▆▇█]{3}$/.test(r)) ? screen : undefined
  }, 'both workers with a line of requests per second', 60_000)
  t.match(first, /^shop +pid \d+ +rr +running +generation 0/m)
  t.match(first, /^ID +PID +STATE +GEN +UPTIME +RSS +LOOP +REQ\/S +CPU +REQUESTS\/S, LAST MINUTES/m)
  t.match(first, /^q or Ctrl-C to quit/m)

  await get(`http://127.0.0.1:${port}/log?text=from-the-app`)
  await until(() => term.screen('a').includes('from-the-app'), 'the app\'s line in the log')
  const victim = cli.events.find((e) => e.event === 'worker.fork' && e.workerId === 1)!.pid
  kill(victim)
  await until(() => new RegExp(`worker\\.exit workerId=1 pid=${victim} reason=signaled signal=SIGKILL`).test(term.screen('a')), 'the crash among the events')

  term.tmux('resize-window', '-t', 'a', '-x', '64', '-y', '16')
  const small = await until(() => {
    const screen = term.screen('a')
    const lines = screen.split('\n')
    return lines.every((l) => [...l].length <= 64) && /^q or Ctrl-C to quit/m.test(screen) && rows(screen).length === 2 ? screen : undefined
  }, 'the frame redrawn for 64×16')
  t.ok(small.trimEnd().split('\n').length <= 16, 'no more lines than the terminal has')
  const artifacts = path.join(ROOT, 'artifacts')
  fs.mkdirSync(artifacts, { recursive: true })
  fs.writeFileSync(path.join(artifacts, 'top.txt'), first)
  t.match(small, /^shop +pid/, 'nothing scrolled off the top')

  term.tmux('send-keys', '-t', 'a', 'q')
  t.same(await until(() => term.exited('a'), 'top to quit on q'), { code: 0 })
  t.notMatch(term.screen('a'), /REQUESTS\/S/, 'the screen given back as it was')

  term.start('b', [100, 24], top)
  await until(() => rows(term.screen('b')).length === 2, 'the second top to draw')
  term.tmux('send-keys', '-t', 'b', 'C-c')
  t.same(await until(() => term.exited('b'), 'top to quit on Ctrl-C'), { code: 0 })

  // without a terminal: the status, once
  const plain = await command(home, ['top', 'shop'])
  t.equal(plain.code, 0)
  t.match(plain.stdout, /^shop +pid \d+/)
  t.match(plain.stdout, /^ID +PID +STATE/m)
  clearInterval(trickle)
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})
