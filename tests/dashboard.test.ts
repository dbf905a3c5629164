// The dashboard page in a real browser (Debian's chromium, driven by playwright-core)
// against a real cluster: it fills with the workers' figures, shows a killed worker on
// its timeline and its replacement's series, the log tail, and stays live through a
// reload and an upgrade of the primary.
import t from 'tap'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import type { Test } from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startCli, fixture, isolateControlSockets, FILE_TIMEOUT_MS, ROOT } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'
import { kill, reapLater } from './helpers/reap.js'

t.setTimeout(FILE_TIMEOUT_MS)
isolateControlSockets(t)

/** The browser: CHROMIUM_PATH, or Debian's (.ci/run installs it). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** Where the tests leave what a person looks at afterwards (the page's screenshot). */
const ARTIFACTS = path.join(ROOT, 'artifacts')

async function browse (t: Test): Promise<{ page: Page, errors: string[] }> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`)
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
  const errors: string[] = []
  page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()) })
  page.on('pageerror', (err) => errors.push(err.message))
  return { page, errors }
}

/** The "Now" table: one row per ready worker, its cells as shown. */
async function now (page: Page): Promise<Array<Record<string, string>>> {
  return page.$$eval('#now tbody tr', (rows) => rows.map((row) => {
    const cells = [...row.children].map((c) => c.textContent ?? '')
    const names = ['worker', 'pid', 'generation', 'rps', 'cpu', 'rss', 'heap', 'delay', 'inflight', 'connections']
    return Object.fromEntries(names.map((name, i) => [name, cells[i]]))
  }))
}

const text = (page: Page, selector: string): Promise<string> => page.$eval(selector, (node) => node.textContent ?? '')

t.test('the page: live charts, a killed worker on the timeline and its replacement, the log, through a reload and an upgrade', async (t) => {
  const port = await freePort()
  const metricsPort = await freePort()
  const cli = startCli(t, [fixture('apps/upgradable.js'), '-w', '2', '-n', 'dash', '--metrics-port', String(metricsPort)], { env: { PORT: String(port), HOST: '127.0.0.1' } })
  await cli.untilReady(2, 60_000)
  const { page, errors } = await browse(t)
  const url = `http://127.0.0.1:${metricsPort}`
  t.equal((await get(`${url}/`)).headers.location, '/dashboard', '/ leads to the page')

  await page.goto(`${url}/dashboard`)
  await page.waitForSelector('#connection[data-state="live"]')
  t.equal(await text(page, 'h1'), 'cluster-run: dash')
  t.equal(await page.locator('canvas').count(), 8, 'eight charts')

  // the charts' figures: requests per second from a steady trickle of requests
  const trickle = setInterval(() => { void get(`http://127.0.0.1:${port}/`).catch(() => {}) }, 20)
  t.teardown(() => clearInterval(trickle))
  const rows = await until(async () => {
    const r = await now(page)
    return r.length === 2 && r.every((row) => Number(row.rps) > 0 && Number(row.rss) > 10) ? r : undefined
  }, 'both workers\' rows to show requests per second and an RSS', 30_000)
  t.same(rows.map((r) => r.worker), ['worker 0', 'worker 1'])
  t.match(await text(page, '#summary'), /^2 of 2 workers ready/)

  // the log tail shows a line the app wrote
  await get(`http://127.0.0.1:${port}/log?text=hello-dashboard`)
  await page.waitForFunction(() => document.getElementById('logs')!.textContent!.includes('hello-dashboard'))
  t.pass('the log tail shows the app\'s line')

  // a worker killed: on the timeline, and its slot's series goes on with the replacement
  const victim = Number(rows[0].pid)
  kill(victim)
  const ready = await cli.waitFor('worker.ready', (e) => e.workerId === 0 && e.pid !== victim, 60_000)
  await page.waitForFunction((pid) => document.getElementById('events')!.textContent!.includes(`worker 0 (pid ${pid}) exited: signaled (SIGKILL)`), victim)
  t.pass('the crash is on the timeline')
  await until(async () => (await now(page)).some((r) => r.worker === 'worker 0' && Number(r.pid) === ready.pid), 'the replacement\'s figures in slot 0', 30_000)

  // a reload does not break the stream; its events appear
  cli.signal('SIGHUP')
  await cli.waitFor('reload.complete', undefined, 60_000)
  await page.waitForFunction(() => document.getElementById('events')!.textContent!.includes('reload complete: generation 1'))
  t.equal(await page.getAttribute('#connection', 'data-state'), 'live', 'still live after the reload')

  fs.mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true })

  // an upgrade: the stream breaks with the old primary, and the page reconnects to the new one
  const oldPid = cli.child.pid!
  cli.signal('SIGUSR2')
  const { pid: newPid } = await cli.waitFor('upgrade.start', undefined, 60_000)
  reapLater(newPid)
  await cli.waitFor('upgrade.complete', (e) => e.pid === newPid, 60_000)
  await page.waitForFunction((pid) => document.getElementById('summary')!.textContent!.includes(`pid ${pid}`), newPid, { timeout: 30_000 })
  await page.waitForSelector('#connection[data-state="live"]')
  t.not(newPid, oldPid)
  t.pass('the page follows the new primary')
  await until(async () => (await now(page)).length === 2, 'the new primary\'s workers on the page', 30_000)

  t.same(errors, [], 'no console error')
  clearInterval(trickle)
  process.kill(newPid, 'SIGTERM')
  await until(() => { try { process.kill(newPid, 0); return false } catch { return true } }, 'the new primary to exit', 30_000)
})

t.test('the stream, the files and their headers: no inline script, no framing, no cross-origin reader', async (t) => {
  const metricsPort = await freePort()
  const cli = startCli(t, [fixture('apps/upgradable.js'), '-w', '1', '--metrics-port', String(metricsPort)], { env: { PORT: String(await freePort()), HOST: '127.0.0.1' } })
  await cli.untilReady(1, 60_000)
  const url = `http://127.0.0.1:${metricsPort}`
  const page = await get(`${url}/dashboard`)
  t.equal(page.status, 200)
  t.match(page.headers['content-security-policy'], /script-src 'self'/)
  t.match(page.headers['content-security-policy'], /frame-ancestors 'none'/)
  t.notMatch(page.body, /<script>/, 'no inline script')
  const gzipped = await Promise.all(['/dashboard', '/dashboard/app.js', '/dashboard/app.css', '/dashboard/uplot.js', '/dashboard/uplot.css']
    .map((p) => get(`${url}${p}`, { headers: { 'accept-encoding': 'gzip' } })))
  const bytes = gzipped.reduce((n, r) => n + Number(r.headers['content-length']), 0)
  t.ok(gzipped.every((r) => r.headers['content-encoding'] === 'gzip'))
  t.ok(bytes < 100 * 1024, `the page and its scripts: ${bytes} bytes gzipped, under 100 KB`)
  const stream = await firstEvent(`${url}/dashboard/stream`, { origin: 'http://elsewhere.example' })
  t.equal(stream.status, 200)
  t.equal(stream.headers['content-type'], 'text/event-stream')
  t.equal(stream.headers['access-control-allow-origin'], undefined, 'a page of another origin cannot read it')
  t.match(stream.text, /^retry: 1000\nevent: snapshot\ndata: \{"cluster":\{"name":/)
  t.equal((await get(`${url}/dashboard/nope`)).status, 404)
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)
})

/** The stream's headers and its text up to the end of its first event; then it is closed. */
function firstEvent (url: string, headers: http.OutgoingHttpHeaders): Promise<{ status: number, headers: http.IncomingHttpHeaders, text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false, timeout: 15_000 }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk
        if (!text.includes('\n\n')) return
        req.destroy()
        resolve({ status: res.statusCode!, headers: res.headers, text })
      })
    })
    req.on('error', reject)
    req.on('timeout', () => req.destroy(new Error('no event in time')))
  })
}
