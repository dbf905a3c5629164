// The dashboard page in a real browser (Debian's chromium, driven by playwright-core)
// against a real cluster: it fills with the workers' figures, shows a killed worker on
// its timeline and its replacement's series, the log tail, and stays live through a
// reload and an upgrade of the primary.
import t from 'tap'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import type { Test } from 'tap'
import { chromium, type Browser, type Page } from 'playwright-core'
import { startCli, fixture, isolateControlSockets, command, controlHome, FILE_TIMEOUT_MS, ROOT } from './helpers/cli.js'
import { get, freePort, until } from './helpers/http.js'
import { kill, reapLater } from './helpers/reap.js'

t.setTimeout(FILE_TIMEOUT_MS)
isolateControlSockets(t)

/** The browser: CHROMIUM_PATH, or Debian's (.ci/run installs it). */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** Where the tests leave what a person looks at afterwards (the page's screenshot). */
const ARTIFACTS = path.join(ROOT, 'artifacts')

async function browse (t: Test, colorScheme: 'light' | 'dark' = 'light'): Promise<{ page: Page, errors: string[] }> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`)
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, colorScheme })
  // a busy machine: every wait on the page may take a while, none is timed
  page.setDefaultTimeout(60_000)
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
  }, 'both workers\' rows to show requests per second and an RSS', 60_000)
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
  await until(async () => (await now(page)).some((r) => r.worker === 'worker 0' && Number(r.pid) === ready.pid), 'the replacement\'s figures in slot 0', 60_000)

  // an action: refused without the token, run with it
  await page.click('#scale-up')
  await page.waitForFunction(() => document.getElementById('action-result')!.textContent!.includes('refused'))
  const { dashboard } = await cli.waitFor('primary.start')
  await page.fill('#token', fs.readFileSync(dashboard.tokenFile, 'utf8').trim())
  await page.click('#token-form button')
  await page.click('#scale-up')
  await cli.waitFor('scale', (e) => e.from === 2 && e.to === 3)
  await until(async () => (await now(page)).length === 3, 'the third worker on the page', 60_000)
  t.pass('"Add a worker" with the token adds one')

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
  await page.waitForFunction((pid) => document.getElementById('summary')!.textContent!.includes(`pid ${pid}`), newPid)
  await page.waitForSelector('#connection[data-state="live"]')
  t.not(newPid, oldPid)
  t.pass('the page follows the new primary')
  // (the new primary runs the config's 2 workers: a live scale is not config)
  await until(async () => (await now(page)).length === 2, 'the new primary\'s workers on the page', 60_000)

  // the browser logs the refused action's 403 itself; nothing else
  t.same(errors.filter((e) => !/status of 403/.test(e)), [], 'no console error')

  // every control has a name a screen reader says; the charts are images with a label
  const unnamed = await page.$$eval('button, select, input', (controls) => controls
    .filter((c) => !(c.textContent?.trim() || c.getAttribute('aria-label') || (c.id && document.querySelector(`label[for="${c.id}"]`)) || c.closest('label')))
    .map((c) => c.outerHTML))
  t.same(unnamed, [], 'every control is named')
  t.equal(await page.locator('.chart[role="img"][aria-label]').count(), 8)

  // the dark scheme, when the system asks for it
  const dark = await browse(t, 'dark')
  await dark.page.goto(`${url}/dashboard`)
  await dark.page.waitForSelector('#connection[data-state="live"]')
  t.equal(await dark.page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(13, 17, 23)', 'dark background')
  t.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(255, 255, 255)', 'light background')
  await dark.page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-dark.png'), fullPage: true })
  clearInterval(trickle)
  process.kill(newPid, 'SIGTERM')
  await until(() => { try { process.kill(newPid, 0); return false } catch { return true } }, 'the new primary to exit', 60_000)
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

t.test('actions: only with the token in a header, from the page\'s own origin; the token file is private and never printed', async (t) => {
  const home = controlHome(t)
  const metricsPort = await freePort()
  const cli = startCli(t, [fixture('apps/upgradable.js'), '-w', '2', '-n', 'acts', '--metrics-port', String(metricsPort)], { env: { PORT: String(await freePort()), HOST: '127.0.0.1', CLUSTER_RUN_HOME: home } })
  await cli.untilReady(2, 60_000)
  const { dashboard } = await cli.waitFor('primary.start')
  t.equal(dashboard.tokenFile, path.join(home, 'acts.token'), 'beside the control socket')
  t.equal(fs.statSync(dashboard.tokenFile).mode & 0o777, 0o600, 'owner-only')
  const token = fs.readFileSync(dashboard.tokenFile, 'utf8').trim()
  const url = `http://127.0.0.1:${metricsPort}/dashboard`
  const json = { 'content-type': 'application/json' }
  const bearer = { authorization: `Bearer ${token}` }

  t.equal((await post(`${url}/scale`, json, '{"delta":1}')).status, 403, 'no token')
  t.equal((await post(`${url}/scale`, { ...json, authorization: `Bearer ${'x'.repeat(43)}` }, '{"delta":1}')).status, 403, 'a wrong token')
  t.equal((await post(`${url}/scale`, { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' }, `token=${token}&delta=1`)).status, 403, 'the token in a form of another site')
  t.equal((await get(`${url}/scale?token=${token}&delta=1`)).status, 405, 'an image (a GET) changes nothing')
  t.equal((await post(`${url}/scale`, { ...json, ...bearer, origin: 'http://evil.example' }, '{"delta":1}')).status, 403, 'another origin, even with the token')
  t.equal((await post(`${url}/scale`, { 'content-type': 'text/plain', ...bearer }, '{"delta":1}')).status, 415, 'not JSON')
  t.equal((await post(`${url}/scale`, { ...json, ...bearer }, '{"delta":5}')).status, 400)
  t.equal((await post(`${url}/scale`, { ...json, ...bearer }, 'x'.repeat(5000))).status, 413)
  t.equal((await post(`${url}/recycle`, { ...json, ...bearer }, '{"workerId":9}')).status, 409, 'no such worker')
  t.same(cli.events.filter((e) => e.event === 'scale'), [], 'nothing refused ran')

  const scaled = await post(`${url}/scale`, { ...json, ...bearer, origin: `http://127.0.0.1:${metricsPort}` }, '{"delta":1}')
  t.equal(scaled.status, 202, 'the page\'s own origin, with the token')
  await cli.waitFor('scale', (e) => e.to === 3)
  const recycled = await post(`${url}/recycle`, { ...json, ...bearer }, '{"workerId":0}')
  t.equal(recycled.status, 202)
  const recycle = await cli.waitFor('worker.recycle', (e) => e.workerId === 0)
  t.equal(recycle.reason, 'asked')
  await cli.waitFor('worker.exit', (e) => e.pid === recycle.pid && e.reason === 'recycled', 60_000)
  const reloaded = await post(`${url}/reload`, { ...json, ...bearer }, '{}')
  t.same(reloaded, { status: 200, json: { outcome: 'complete' } })

  const status = await command(home, ['status', 'acts', '--json'])
  t.equal(status.code, 0)
  for (const [where, text] of [['the log', cli.stdout()], ['stderr', cli.stderr()], ['status', status.stdout]]) t.notOk(text.includes(token), `the token is not in ${where}`)
  cli.signal('SIGTERM')
  t.equal(await cli.exited, 0)

  // the next primary keeps the token: an open page goes on working after a restart or an upgrade
  const again = startCli(t, [fixture('apps/upgradable.js'), '-w', '1', '-n', 'acts', '--metrics-port', String(metricsPort)], { env: { PORT: String(await freePort()), HOST: '127.0.0.1', CLUSTER_RUN_HOME: home } })
  await again.untilReady(1, 60_000)
  t.equal(fs.readFileSync(dashboard.tokenFile, 'utf8').trim(), token)
  again.signal('SIGTERM')
  t.equal(await again.exited, 0)
})

t.test('read-only, and said so at start: without a control socket (no token file), and on a listener that is not loopback', async (t) => {
  for (const [metrics, controlSocket, reason] of [
    [{ port: await freePort() }, false, /no control socket/],
    [{ port: await freePort(), host: '0.0.0.0' }, undefined, /metrics\.host 0\.0\.0\.0 is not loopback/],
  ] as const) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster-run-dash-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    fs.writeFileSync(path.join(dir, 'cluster.config.json'), JSON.stringify({ app: fixture('apps/upgradable.js'), workers: 1, metrics, ...(controlSocket === false ? { controlSocket } : {}) }))
    const cli = startCli(t, [], { cwd: dir, env: { PORT: String(await freePort()), HOST: '127.0.0.1' } })
    const { dashboard } = await cli.waitFor('primary.start', undefined, 60_000)
    t.match(dashboard.readOnly, reason)
    t.equal(dashboard.tokenFile, undefined)
    await cli.untilReady(1, 60_000)
    const refused = await post(`http://127.0.0.1:${metrics.port}/dashboard/reload`, { 'content-type': 'application/json', authorization: `Bearer ${'x'.repeat(43)}` }, '{}')
    t.equal(refused.status, 403)
    t.match(refused.json.error, /read-only/)
    const snapshot = await firstEvent(`http://127.0.0.1:${metrics.port}/dashboard/stream`, {})
    t.match(snapshot.text, metrics.host === '0.0.0.0' ? /"logs":null/ : /"logs":\[/, 'the log tail only on loopback')
    cli.signal('SIGTERM')
    t.equal(await cli.exited, 0)
  }
})

/** An action request as a script of the page sends it, or as something else tries to. */
function post (url: string, headers: http.OutgoingHttpHeaders, body: string): Promise<{ status: number, json: any }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-length': Buffer.byteLength(body), ...headers }, agent: false, timeout: 60_000 }, (res) => {
      let text = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

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
