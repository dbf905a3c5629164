// The deployment recipes in examples/ agree with the example app's config and with
// cluster-run: the YAML parses, the probes and the scrape point at the metrics port
// the config sets, the grace periods follow from the shutdown delay and timeout, the
// Dockerfile and the systemd unit carry the settings examples/README.md explains.
// Then the example app itself runs under the CLI: `--check` accepts its config, and
// the probe paths of the manifest answer as the manifest expects, a SIGTERM included.
import t from 'tap'
import fs from 'node:fs'
import path from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { parseAllDocuments } from 'yaml'
import { CLI, ROOT, startCli, controlHome, FILE_TIMEOUT_MS } from './helpers/cli.js'
import { serviceUnit, socketUnit } from '../lib/upgrade/unit.js'
import { get, freePort, until } from './helpers/http.js'

t.setTimeout(FILE_TIMEOUT_MS)

const EXAMPLES = path.join(ROOT, 'examples')
const APP_DIR = path.join(EXAMPLES, 'app')
const read = (file: string): string => fs.readFileSync(path.join(EXAMPLES, file), 'utf8')

/** The margin, in seconds, on top of shutdownDelayMs + shutdownTimeoutMs (examples/README.md). */
const MARGIN_SECONDS = 5

const config = JSON.parse(read('app/cluster.config.json'))
const appPackage = JSON.parse(read('app/package.json'))
const repoPackage = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'))
/** Where the cluster-run bin lives in an app that depends on cluster-run. */
const BIN = `node_modules/cluster-run/${repoPackage.bin['cluster-run'].replace(/^\.\//, '')}`
const graceSeconds = Math.ceil((config.shutdownDelayMs + config.shutdownTimeoutMs) / 1000) + MARGIN_SECONDS

function yamlDocuments (file: string): any[] {
  const docs = parseAllDocuments(read(file))
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`)
  }
  return docs.map((doc) => doc.toJS())
}

const kube = yamlDocuments('kubernetes/deployment.yaml')
const deployment = kube.find((d) => d.kind === 'Deployment')
const service = kube.find((d) => d.kind === 'Service')
const [serviceMonitor] = yamlDocuments('kubernetes/servicemonitor.yaml')
const pod = deployment?.spec?.template
const container = pod?.spec?.containers?.[0]

/** A container port by name or number, as a probe or a Service's targetPort names it. */
function containerPort (port: string | number): any {
  return container.ports.find((p: any) => p.name === port || p.containerPort === port)
}

t.test('the example config: what the recipes rely on', async (t) => {
  t.equal(config.app, 'server.js')
  t.ok(fs.existsSync(path.join(APP_DIR, config.app)), 'the entry exists')
  t.equal(config.workers, 'auto', "workers: 'auto' follows the CPU limit")
  t.equal(config.metrics?.port, 9100)
  t.equal(config.metrics?.host, '0.0.0.0', 'the kubelet probes the pod IP, not loopback')
  t.equal(config.shutdownDelayMs, 5000)
  t.equal(config.shutdownTimeoutMs, 20000)
  t.equal(graceSeconds, 30, '5 s + 20 s + 5 s')
  t.notOk('controlSocket' in config, 'the control socket stays on; each recipe gives it a writable CLUSTER_RUN_HOME')
  t.equal(appPackage.scripts?.start, 'cluster-run server.js')
  const range = appPackage.dependencies?.['cluster-run']
  t.equal(range, `^${repoPackage.version}`, 'depends on this version of cluster-run')
  const server = fs.readFileSync(path.join(APP_DIR, config.app), 'utf8')
  t.match(server, /from 'node:http'/, 'a plain node:http app')
  t.notMatch(server, /(from|import|require)\s*\(?\s*['"]cluster-run/, 'that does not import cluster-run')
})

t.test('kubernetes: the Deployment', async (t) => {
  t.ok(deployment && service, 'deployment.yaml holds a Deployment and a Service')
  t.equal(pod.spec.terminationGracePeriodSeconds, graceSeconds,
    `terminationGracePeriodSeconds = ceil((${config.shutdownDelayMs} + ${config.shutdownTimeoutMs}) / 1000) + ${MARGIN_SECONDS}`)
  t.ok(container.resources?.limits?.cpu, "a CPU limit, which workers: 'auto' reads as the cgroup quota")

  const metricsPort = containerPort('metrics')
  t.equal(metricsPort?.containerPort, config.metrics.port, 'the port named metrics is metrics.port')
  for (const [probe, want] of [['livenessProbe', '/healthz'], ['readinessProbe', '/readyz']] as const) {
    const http = container[probe]?.httpGet
    t.equal(http?.path, want, `${probe} GETs ${want}`)
    t.equal(containerPort(http?.port)?.containerPort, config.metrics.port, `${probe} goes to the metrics port`)
  }

  const annotations = pod.metadata.annotations
  t.equal(annotations['prometheus.io/scrape'], 'true')
  t.equal(annotations['prometheus.io/port'], String(config.metrics.port))
  t.equal(annotations['prometheus.io/path'], '/metrics')

  // The app's port: the env PORT the app reads is the container port named http.
  const env = Object.fromEntries(container.env.map((e: any) => [e.name, e.value]))
  t.equal(containerPort('http')?.containerPort, Number(env.PORT))

  // A read-only root: the control socket's directory must be on a writable volume.
  t.equal(container.securityContext?.readOnlyRootFilesystem, true)
  t.ok(pod.spec.securityContext?.runAsNonRoot, 'runs as non-root')
  const home = dockerEnv().CLUSTER_RUN_HOME
  const mounts = container.volumeMounts.map((m: any) => m.mountPath)
  t.ok(mounts.some((m: string) => home.startsWith(`${m}/`)), `CLUSTER_RUN_HOME (${home}) is on a mounted volume (${mounts})`)
})

t.test('kubernetes: the Service and the ServiceMonitor', async (t) => {
  const podLabels = pod.metadata.labels
  for (const [k, v] of Object.entries(service.spec.selector)) t.equal(podLabels[k], v, `the Service selects the pods (${k})`)
  for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels)) t.equal(podLabels[k], v, `the Deployment selects its pods (${k})`)
  const metricsPort = service.spec.ports.find((p: any) => p.name === 'metrics')
  t.ok(metricsPort, 'the Service has a port named metrics')
  t.equal(containerPort(metricsPort.targetPort)?.containerPort, config.metrics.port, 'which targets metrics.port')
  const httpPort = service.spec.ports.find((p: any) => p.name === 'http')
  t.equal(containerPort(httpPort.targetPort)?.name, 'http', 'and one for the app')

  t.equal(serviceMonitor.apiVersion, 'monitoring.coreos.com/v1')
  t.equal(serviceMonitor.kind, 'ServiceMonitor')
  const selector = serviceMonitor.spec.selector.matchLabels
  t.ok(Object.keys(selector).length > 0)
  for (const [k, v] of Object.entries(selector)) t.equal(service.metadata.labels[k], v, `the ServiceMonitor selects the Service (${k})`)
  t.equal(serviceMonitor.spec.endpoints.length, 1)
  const [endpoint] = serviceMonitor.spec.endpoints
  t.equal(endpoint.port, metricsPort.name, "the endpoint's port is the Service's metrics port name")
  t.equal(endpoint.path, '/metrics')
})

/** The unit file: section → key → every value given (a key may repeat). */
function parseUnit (text: string): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {}
  let current: Record<string, string[]> | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (!line || line.startsWith('#') || line.startsWith(';')) continue
    const section = /^\[(.+)\]$/.exec(line)
    if (section) {
      current = sections[section[1]!] ??= {}
      continue
    }
    const eq = line.indexOf('=')
    if (!current || eq < 1) throw new Error(`not a unit file line: ${line}`)
    ;(current[line.slice(0, eq)] ??= []).push(line.slice(eq + 1))
  }
  return sections
}

t.test('systemd: the unit is what `cluster-run startup --user app` prints for the app installed in /srv/example-app', async (t) => {
  t.equal(read('systemd/cluster-run.service'), serviceUnit({
    name: 'example-app',
    user: 'app',
    workingDirectory: '/srv/example-app',
    node: '/usr/bin/node',
    cli: path.join('/srv/example-app', BIN),
    args: [],
    shutdownDelayMs: config.shutdownDelayMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    printedBy: 'cluster-run startup --user app',
  }))
  // and the command prints the same for the app where it is here
  const printed = spawnSync(process.execPath, [CLI, 'startup', '--user', 'app'], { cwd: path.join(EXAMPLES, 'app'), encoding: 'utf8', timeout: 60_000 })
  t.equal(printed.status, 0, printed.stderr)
  t.equal(printed.stdout, serviceUnit({
    name: 'example-app',
    user: 'app',
    workingDirectory: path.join(EXAMPLES, 'app'),
    node: process.execPath,
    cli: fs.realpathSync(CLI),
    args: [],
    shutdownDelayMs: config.shutdownDelayMs,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    printedBy: 'cluster-run startup --user app',
  }))
})

t.test('systemd: startup --socket prints a service that needs its socket unit, and --socket-unit prints that; systemd\'s parser accepts both', async (t) => {
  const run = (args: string[]) => spawnSync(process.execPath, [CLI, 'startup', ...args], { cwd: path.join(EXAMPLES, 'app'), encoding: 'utf8', timeout: 60_000 })
  const service = run(['shop', '--socket', '127.0.0.1:3000', '--', '-w', '4'])
  t.equal(service.status, 0, service.stderr)
  const unit = parseUnit(service.stdout)
  t.same(unit.Unit?.Requires, ['shop.socket'])
  t.same(unit.Service?.ExecStart, [`${process.execPath} ${fs.realpathSync(CLI)} --name shop -w 4`], 'the name and the arguments after -- are the service\'s command line')
  t.same(unit.Service?.Type, ['notify'])
  t.same(unit.Service?.NotifyAccess, ['all'], 'systemd-notify sends for the primary')
  t.match(service.stdout, 'cluster-run startup --socket-unit shop --socket 127.0.0.1:3000 -- -w 4 | sudo tee /etc/systemd/system/shop.socket', 'says how to print the socket unit')
  const socket = run(['--socket-unit', 'shop', '--socket', '127.0.0.1:3000', '--', '-w', '4'])
  t.equal(socket.status, 0, socket.stderr)
  t.equal(socket.stdout, socketUnit({ name: 'shop', socket: '127.0.0.1:3000', printedBy: 'cluster-run startup shop --socket 127.0.0.1:3000 -- -w 4' }))
  t.same(parseUnit(socket.stdout).Socket?.ListenStream, ['127.0.0.1:3000'])
  for (const [args, message] of [[['--socket-unit'], /--socket-unit needs --socket/], [['--socket', 'x y'], /--socket expects a port/], [['a', 'b'], /at most one name/]] as const) {
    const bad = run([...args])
    t.equal(bad.status, 64, `usage error: ${args.join(' ')}`)
    t.match(bad.stderr, message)
  }
  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' })
  if (analyze.error) {
    t.comment('systemd-analyze is not installed: skipping its verify')
    return
  }
  const dir = t.testdir({ 'shop.service': service.stdout, 'shop.socket': socket.stdout })
  const verify = spawnSync('systemd-analyze', ['verify', path.join(dir, 'shop.service'), path.join(dir, 'shop.socket')], { encoding: 'utf8', timeout: 20_000 })
  const complaints = verify.stderr.split('\n').filter((l) => /shop\.(service|socket)/.test(l) && !/not executable|No such file/.test(l))
  t.same(complaints, [], 'systemd-analyze verify has nothing to say about them')
})

t.test('systemd: the unit', async (t) => {
  const text = read('systemd/cluster-run.service')
  const unit = parseUnit(text)
  const service = unit.Service!
  const one = (key: string): string | undefined => service[key]?.at(-1)
  t.equal(one('KillMode'), 'mixed', 'SIGTERM to the primary only; SIGKILL to the rest at the end')
  t.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID')
  t.equal(one('Restart'), 'on-failure')
  t.same(one('RestartPreventExitStatus')?.split(/\s+/).sort(), ['3', '78'], 'no restart after a boot failure or an invalid config')
  t.equal(one('TimeoutStopSec'), String(graceSeconds), `TimeoutStopSec = ${graceSeconds}`)
  t.ok(one('User') && !['root', '0'].includes(one('User')!), 'a non-root User')
  t.match(one('WorkingDirectory'), /^\//, 'an absolute WorkingDirectory')
  const [node, bin, ...rest] = one('ExecStart')!.split(/\s+/)
  t.match(node, /^\/.*\/node$/, 'ExecStart runs node by its absolute path')
  t.equal(bin, path.join(one('WorkingDirectory')!, BIN), 'on the cluster-run bin of the app in WorkingDirectory')
  t.same(rest, [], 'with no entry argument: the config in WorkingDirectory names it')
  t.ok(unit.Install?.WantedBy, 'installable')
  // The control socket in the unit's runtime directory, owner-only.
  t.equal(one('RuntimeDirectory'), 'cluster-run')
  t.equal(one('RuntimeDirectoryMode'), '0700')
  t.ok(service.Environment?.includes('CLUSTER_RUN_HOME=%t/cluster-run'), 'CLUSTER_RUN_HOME is the runtime directory')

  // systemd's own parser, where there is one: no key it would ignore.
  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' })
  if (analyze.error) {
    t.comment('systemd-analyze is not installed: skipping its verify')
    return
  }
  const dir = t.testdir({ 'example-app.service': text })
  const verify = spawnSync('systemd-analyze', ['verify', path.join(dir, 'example-app.service')], { encoding: 'utf8', timeout: 20_000 })
  const complaints = verify.stderr.split('\n').filter((l) => /example-app\.service/.test(l) && !/not executable|No such file/.test(l))
  t.same(complaints, [], 'systemd-analyze verify has nothing to say about it')
})

/** The Dockerfile's instructions, comments dropped and continuation lines joined. */
function dockerfile (): Array<{ op: string, args: string }> {
  const text = read('docker/Dockerfile').split('\n').filter((l) => !/^\s*#/.test(l)).join('\n').replace(/\\\n/g, ' ')
  return text.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
    const [op = '', ...args] = l.split(/\s+/)
    return { op: op.toUpperCase(), args: args.join(' ') }
  })
}

function dockerEnv (): Record<string, string> {
  const env: Record<string, string> = {}
  for (const { args } of dockerfile().filter((i) => i.op === 'ENV')) {
    for (const [, k, v] of args.matchAll(/(\w+)=(\S+)/g)) env[k!] = v!
  }
  return env
}

t.test('docker: the Dockerfile', async (t) => {
  const steps = dockerfile()
  const of = (op: string) => steps.filter((s) => s.op === op)
  const [from] = of('FROM')
  const lts = /^node:(\d+)-slim$/.exec(from?.args ?? '')
  t.ok(lts, `FROM node:<major>-slim (${from?.args})`)
  t.ok(Number(lts?.[1]) >= 24 && Number(lts?.[1]) % 2 === 0, 'a current LTS line (even, 24 or later)')
  t.equal(of('FROM').length, 1)
  const user = of('USER').at(-1)?.args
  t.equal(user, 'node', "the image's non-root node user")
  t.ok(of('RUN').some((r) => /apt-get install\b.*\btini\b/.test(r.args)), "tini from Debian's package")
  t.same(JSON.parse(of('ENTRYPOINT').at(-1)!.args), ['tini', '--'], 'tini is the entrypoint (PID 1)')
  const cmd = of('CMD').at(-1)!.args
  let argv: unknown
  t.doesNotThrow(() => { argv = JSON.parse(cmd) }, 'CMD in exec form (a JSON array)')
  t.same(argv, ['node', BIN], 'node on the cluster-run bin, no shell, no npm')
  // The config is found in the working directory, which holds the app.
  t.equal(of('WORKDIR').at(-1)?.args, '/app')
  t.ok(of('COPY').some((c) => /^\.\s+\.$/.test(c.args.replace(/--\S+\s+/g, ''))), 'the app folder (with cluster.config.json) is copied into it')
  const env = dockerEnv()
  t.equal(Number(env.PORT), containerPort('http')?.containerPort, 'PORT is the container port named http')
  t.match(env.CLUSTER_RUN_HOME, /^\/tmp\//, 'the control socket under /tmp, writable with a read-only root')
  const exposed = of('EXPOSE').flatMap((e) => e.args.split(/\s+/)).map(Number)
  t.ok(exposed.includes(config.metrics.port) && exposed.includes(Number(env.PORT)), 'EXPOSE: the app and the metrics port')
})

t.test('README: the arithmetic as the files have it', async (t) => {
  const readme = read('README.md')
  const delay = config.shutdownDelayMs / 1000
  const timeout = config.shutdownTimeoutMs / 1000
  t.match(readme, `${delay} s + ${timeout} s + ${MARGIN_SECONDS} s = ${graceSeconds} s`)
  for (const file of ['kubernetes/deployment.yaml', 'systemd/cluster-run.service']) {
    t.match(read(file), `${delay} s + ${timeout} s + ${MARGIN_SECONDS} s = ${graceSeconds} s`, `${file} states it too`)
  }
})

t.test('cluster-run --check in examples/app accepts the config', async (t) => {
  const home = controlHome(t)
  const child = spawn(process.execPath, [CLI, '--check'], {
    cwd: APP_DIR,
    env: { ...process.env, CLUSTER_RUN_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c })
  child.stderr.setEncoding('utf8').on('data', (c: string) => { err += c })
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
  const [code] = await once(child, 'exit')
  clearTimeout(timer)
  t.equal(code, 0, `exit 0 (stderr: ${err})`)
  const resolved = JSON.parse(out)
  t.equal(resolved.configFile, path.join(APP_DIR, 'cluster.config.json'), 'found in the working directory')
  t.equal(resolved.app, path.join(APP_DIR, 'server.js'))
  t.type(resolved.workers, 'number', "'auto' resolved to a count")
  t.match(resolved.workersReason, /^auto: /)
  t.same(resolved.metrics, { ...config.metrics, timeoutMs: resolved.metrics.timeoutMs, dashboard: true })
  t.equal(resolved.shutdownDelayMs, config.shutdownDelayMs)
  t.equal(resolved.shutdownTimeoutMs, config.shutdownTimeoutMs)
  t.equal(resolved.name, appPackage.name, "named after the app's package")
  t.equal(resolved.controlSocket, path.join(home, `${appPackage.name}.sock`), 'the control socket under CLUSTER_RUN_HOME')
})

t.test('the example app under cluster-run: the probes of the manifest, then a SIGTERM as the kubelet sends it', async (t) => {
  // The example config with local ports and a shorter delay; every other key as it is.
  const port = await freePort()
  const metricsPort = await freePort()
  const delayMs = 3000
  const dir = t.testdir({
    'cluster.config.json': JSON.stringify({
      ...config,
      app: path.join(APP_DIR, config.app),
      workers: 2,
      shutdownDelayMs: delayMs,
      metrics: { ...config.metrics, port: metricsPort, host: '127.0.0.1' },
    }),
  })
  const cli = startCli(t, ['--config', path.join(dir, 'cluster.config.json')], { cwd: APP_DIR, env: { PORT: String(port), HOST: '127.0.0.1' } })
  await cli.untilReady(2)
  const app = `http://127.0.0.1:${port}`
  const metrics = `http://127.0.0.1:${metricsPort}`

  const hello = await get(`${app}/`)
  t.equal(hello.status, 200)
  t.equal(hello.json().hello, 'world', 'the app answers from a worker')
  t.ok(cli.workerPids().includes(hello.json().pid))

  const probes = { liveness: container.livenessProbe.httpGet.path, readiness: container.readinessProbe.httpGet.path }
  t.equal((await get(`${metrics}${probes.liveness}`)).status, 200, `liveness probe ${probes.liveness}: 200`)
  // polled: the verdict is read from the primary's status, which may trail the ready events by a pass
  await until(async () => (await get(`${metrics}${probes.readiness}`)).status === 200, `readiness probe ${probes.readiness}: 200`)
  t.pass(`readiness probe ${probes.readiness}: 200`)
  const scrape = await get(`${metrics}${pod.metadata.annotations['prometheus.io/path']}`)
  t.equal(scrape.status, 200)
  t.match(scrape.body, /^cluster_run_workers_desired 2$/m, 'the scrape path serves cluster-run\'s series')

  cli.signal('SIGTERM')
  await cli.waitFor('shutdown.start')
  // unready from the step that logs the start: the very next probe says so
  const ready = await get(`${metrics}${probes.readiness}`)
  t.equal(ready.status, 503, 'readiness is 503 once the shutdown began')
  t.equal(ready.json().reason, 'shutting down')
  t.equal((await get(`${metrics}${probes.liveness}`)).status, 200, 'liveness stays 200: the kubelet must not restart a pod that drains')
  const during = await get(`${app}/`)
  const answeredAt = Date.now()
  t.equal(during.status, 200, 'the app still answers during the delay')
  t.equal(await cli.exited, 0)
  const drain = cli.events.find((e) => e.event === 'worker.drain')
  t.ok(drain && answeredAt < Date.parse(drain.time), 'all of that before any worker began to drain')
  const complete = cli.events.find((e) => e.event === 'shutdown.complete')!
  t.equal(complete.exitCode, 0)
  t.ok(complete.durationMs >= delayMs, `the stop took the delay (${complete.durationMs} ms)`)
})
