// errors: 'delegate' hands the 503 to each framework's own error handling,
// default and custom; plus Fastify plugin specifics.
import t, { type Test } from 'tap'
import express from 'express'
import Fastify, { type FastifyInstance } from 'fastify'
import Koa from 'koa'
import { workerState } from '../lib/worker/state.js'
import { expressGuard, fastifyGuard, koaGuard, type Guard } from '../lib/middleware/index.js'
import { MESSAGES, type HttpError } from '../lib/middleware/responses.js'
import { Behaviour } from '../fixtures/middleware/apps.js'
import { keepAliveClient, serve, urlOf } from './helpers/http.js'
import { captureLogs } from './helpers/logs.js'

const client = keepAliveClient(t)

// Holds one request so the next one exceeds maxInFlight: 1.
async function fillTheOnlySlot (url: string, app: Behaviour): Promise<() => Promise<void>> {
  const held = client.get(`${url}/hold`)
  await app.waitHeld(1)
  return async () => {
    app.releaseAll()
    await held
  }
}

/**
 * A Fastify app with a delegating guard (maxInFlight: 1) and a /hold route,
 * listening until `t` ends; `configure` runs before the route is added.
 */
async function delegatingFastify (t: Test, app: Behaviour, configure: (web: FastifyInstance) => void = () => {}): Promise<string> {
  const web = Fastify()
  await web.register(fastifyGuard, { maxInFlight: 1, errors: 'delegate', logger: captureLogs().logger })
  configure(web)
  web.get('/hold', async () => { await app.hold(); return { ok: true } })
  await web.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => web.close())
  return urlOf(web.server)
}

t.test('express: next(err) reaches the app error handler with status and Retry-After', async (t) => {
  const app = new Behaviour()
  const seen: HttpError[] = []
  const web = express()
  const middleware = expressGuard({ maxInFlight: 1, errors: 'delegate', logger: captureLogs().logger })
  web.use(middleware)
  web.get('/hold', async (_req, res) => { await app.hold(); res.json({ ok: true }) })
  web.use((err: HttpError, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    seen.push(err)
    res.status(err.status).set(err.headers).json({ custom: true, reason: (err as unknown as { reason: string }).reason })
  })
  const { url } = await serve(t, web, middleware.guard)
  const release = await fillTheOnlySlot(url, app)

  const refused = await client.getJson(`${url}/hold`)
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '5')
  t.same(JSON.parse(refused.body), { custom: true, reason: 'maxInFlight' })
  t.equal(seen.length, 1)
  t.match(seen[0], { status: 503, statusCode: 503, expose: true, message: MESSAGES.overloaded, headers: { 'Retry-After': '5' } })
  t.equal(app.calls, 1, 'the route handler did not run')
  await release()
})

t.test("express: Express's default handler applies err.headers", async (t) => {
  const app = new Behaviour()
  const web = express()
  // outside 'test', Express's default handler prints every error's stack: one
  // more reason the guard answers by itself unless told to delegate
  web.set('env', 'test')
  const middleware = expressGuard({ maxInFlight: 1, errors: 'delegate', logger: captureLogs().logger })
  web.use(middleware)
  web.get('/hold', async (_req, res) => { await app.hold(); res.json({ ok: true }) })
  const { url } = await serve(t, web, middleware.guard)
  const release = await fillTheOnlySlot(url, app)

  const refused = await client.getJson(`${url}/hold`)
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '5')
  t.match(refused.headers['content-type'], /^text\/html/, "Express's default handler renders HTML")
  t.equal(app.calls, 1)
  await release()
})

t.test('fastify: the app error handler sees the 503 and Retry-After is already set', async (t) => {
  const app = new Behaviour()
  const seen: HttpError[] = []
  const url = await delegatingFastify(t, app, (web) => {
    web.setErrorHandler((err: HttpError, _request, reply) => {
      seen.push(err)
      return reply.code(err.statusCode).send({ custom: true })
    })
  })
  const release = await fillTheOnlySlot(url, app)

  const refused = await client.getJson(`${url}/hold`)
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '5')
  t.same(JSON.parse(refused.body), { custom: true })
  t.match(seen, [{ statusCode: 503, message: MESSAGES.overloaded }])
  t.equal(app.calls, 1)
  await release()
})

t.test("fastify: Fastify's default error handler renders the JSON body", async (t) => {
  const app = new Behaviour()
  const url = await delegatingFastify(t, app)
  const release = await fillTheOnlySlot(url, app)

  const refused = await client.getJson(`${url}/hold`)
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '5')
  t.same(JSON.parse(refused.body), { statusCode: 503, error: 'Service Unavailable', message: MESSAGES.overloaded })
  t.equal(app.calls, 1)
  await release()
})

t.test('fastify: the plugin covers encapsulated routes and unknown paths, and closes with the app', async (t) => {
  const state = workerState()
  const drainListeners = state.events.listenerCount('drain')
  const app = new Behaviour()
  const web = Fastify()
  // `prefix` is a register() option of Fastify's own; it must not trip validation
  await web.register(fastifyGuard, { maxInFlight: 1, prefix: '/ignored', logger: captureLogs().logger } as never)
  await web.register(async (child) => {
    child.get('/hold', async () => { await app.hold(); return { ok: true } })
  }, { prefix: '/child' })
  await web.listen({ port: 0, host: '127.0.0.1' })
  const url = urlOf(web.server)
  t.equal(state.events.listenerCount('drain'), drainListeners + 1)

  t.equal((await client.get(`${url}/healthz`)).status, 200, 'probe answered though no route matches')
  const held = client.get(`${url}/child/hold`)
  await app.waitHeld(1)
  const refused = await client.getJson(`${url}/child/hold`)
  t.equal(refused.status, 503, 'the hook applies inside an encapsulated plugin (skip-override)')
  t.equal(app.calls, 1)
  const guard = (web as unknown as { clusterRunGuard: Guard }).clusterRunGuard
  t.match(guard.stats(), { shed: 1, state: 'overloaded' })
  app.releaseAll()
  t.equal((await held).status, 200)

  await web.close()
  t.equal(state.events.listenerCount('drain'), drainListeners, 'closing the app closed the guard')
})

t.test('koa: upstream error middleware catches the thrown 503', async (t) => {
  const app = new Behaviour()
  const seen: HttpError[] = []
  const web = new Koa()
  const middleware = koaGuard({ maxInFlight: 1, errors: 'delegate', logger: captureLogs().logger })
  web.use(async (ctx, next) => {
    try {
      await next()
    } catch (err) {
      const httpError = err as HttpError
      seen.push(httpError)
      ctx.status = httpError.status
      ctx.set(httpError.headers as Record<string, string>)
      ctx.body = { custom: true }
    }
  })
  web.use(middleware)
  web.use(async (ctx) => { await app.hold(); ctx.body = { ok: true } })
  const { url } = await serve(t, web.callback(), middleware.guard)
  const release = await fillTheOnlySlot(url, app)

  const refused = await client.getJson(`${url}/hold`)
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '5')
  t.same(JSON.parse(refused.body), { custom: true })
  t.match(seen, [{ status: 503, expose: true, headers: { 'Retry-After': '5' } }])
  t.equal(app.calls, 1)
  await release()
})

t.test("koa: Koa's default handler applies err.headers, including Connection: close when draining", async (t) => {
  const state = workerState()
  const app = new Behaviour()
  const web = new Koa()
  const errors: unknown[] = []
  web.on('error', (err) => errors.push(err))
  const middleware = koaGuard({ errors: 'delegate', logger: captureLogs().logger })
  web.use(middleware)
  web.use(async (ctx) => { app.hello(); ctx.body = { ok: true } })
  const { url } = await serve(t, web.callback(), middleware.guard)
  t.teardown(() => { state.draining = false })

  state.draining = true
  state.events.emit('drain')
  const refused = await client.getJson(`${url}/`)
  t.equal(refused.status, 503)
  t.equal(refused.headers['retry-after'], '5')
  t.equal(refused.headers.connection, 'close')
  t.equal(refused.body, MESSAGES.draining, 'Koa renders an exposed error message as text')
  t.equal(app.calls, 0)
  t.match(errors, [{ status: 503, expose: true, reason: 'draining' }])
})
