// Any http.Server-based app, unchanged: each served by 2 workers answering from 2 pids.
import t, { type Test } from 'tap'
import { run } from 'cluster-run'
import { fixture, isolateControlSockets, FILE_TIMEOUT_MS, SLOW_BOOT } from './helpers/cli.js'
import { get, freePort, distinct } from './helpers/http.js'

t.setTimeout(FILE_TIMEOUT_MS)

isolateControlSockets(t)

type Check = (t: Test, body: any) => void
const apps: Array<[string, string, Check]> = [
  ['node:http (ESM .js)', 'apps/http.js', (t, b) => t.ok(b.pid)],
  ['Express 5', 'apps/express.js', (t, b) => t.equal(b.kind, 'express')],
  ['Fastify 5', 'apps/fastify.js', (t, b) => t.equal(b.kind, 'fastify')],
  ['Koa 3', 'apps/koa.js', (t, b) => t.equal(b.kind, 'koa')],
  ['Hapi 21', 'apps/hapi.js', (t, b) => t.equal(b.kind, 'hapi')],
  ['CommonJS .cjs', 'apps/cjs.cjs', (t, b) => {
    t.equal(b.isMain, true, 'require.main is the entry')
    t.equal(b.argv1, fixture('apps/cjs.cjs'), 'process.argv[1] is the entry')
    t.same(b.args, ['--mode', 'cjs'], 'app args arrive')
  }],
  ['ES module .mjs', 'apps/esm.mjs', (t, b) => {
    t.equal(b.self, fixture('apps/esm.mjs'), 'import.meta.url is the entry')
    t.equal(b.argv1, fixture('apps/esm.mjs'), 'process.argv[1] is the entry')
  }],
  ['TypeScript .ts (tsx)', 'apps/typed.ts', (t, b) => {
    t.equal(b.kind, 'ts')
    t.equal(b.self, fixture('apps/typed.ts'), 'import.meta.url is the entry')
  }],
  ['TypeScript .mts', 'apps/typed.mts', (t, b) => t.equal(b.kind, 'mts')],
  ['TypeScript .cts', 'apps/typed.cts', (t, b) => t.same([b.kind, b.isMain], ['cts', true])],
  ['TypeScript .ts in a CommonJS package', 'cjs-package/server.ts', (t, b) => t.same([b.kind, b.isMain], ['ts-cjs', true])],
]

for (const [name, file, check] of apps) {
  t.test(name, async (t) => {
    const port = await freePort()
    const cluster = await run({
      app: fixture(file),
      args: ['--mode', 'cjs'],
      workers: 2,
      ...SLOW_BOOT,
      env: { PORT: String(port) },
      log: { level: 'silent' },
    })
    t.teardown(() => cluster.stop())
    const url = `http://127.0.0.1:${port}/`
    const pids = await distinct(url, 2)
    t.equal(pids.size, 2, 'answered from 2 distinct pids')
    t.same(new Set(pids), new Set(cluster.workers().map((w) => w.pid)), 'the pids are the workers\'')
    const reply = await get(url)
    t.equal(reply.status, 200)
    check(t, reply.json())
    t.equal(await cluster.stop(), 0, 'drains and stops cleanly')
  })
}
