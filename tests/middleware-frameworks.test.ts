// The guard on each real framework, over real HTTP on 127.0.0.1.
import t from 'tap'
import express from 'express'
import Fastify from 'fastify'
import { workerState } from '../lib/worker/state.js'
import { MiddlewareOptionsError, expressGuard, fastifyGuard, koaGuard, protect } from '../lib/middleware/index.js'
import { MESSAGES } from '../lib/middleware/responses.js'
import { FRAMEWORKS, startApp } from '../fixtures/middleware/apps.js'
import { burst, keepAliveClient, until } from './helpers/http.js'
import { captureLogs } from './helpers/logs.js'

const client = keepAliveClient(t)

const overloadedBody = { statusCode: 503, error: 'Service Unavailable', message: MESSAGES.overloaded }
const drainingBody = { statusCode: 503, error: 'Service Unavailable', message: MESSAGES.draining }

for (const framework of FRAMEWORKS) {
  t.test(framework, async (t) => {
    t.test('health probes answer without running the app', async (t) => {
      const { logger } = captureLogs()
      const running = await startApp(framework, { logger })
      t.teardown(running.close)
      const { url, app } = running

      const live = await client.get(`${url}/healthz`)
      t.equal(live.status, 200)
      t.match(live.headers['content-type'], /^application\/json/)
      t.equal(live.headers['cache-control'], 'no-store')
      t.equal(live.headers.connection, 'keep-alive', 'not closing connections outside a drain')
      t.same(JSON.parse(live.body), { status: 'ok' })

      const ready = await client.get(`${url}/readyz`)
      t.equal(ready.status, 200)
      t.same(JSON.parse(ready.body), { status: 'ok' })

      const withQuery = await client.get(`${url}/readyz?from=lb`)
      t.equal(withQuery.status, 200)

      const head = await client.get(`${url}/healthz`, { method: 'HEAD' })
      t.equal(head.status, 200)
      t.equal(head.body, '')

      t.equal(app.calls, 0, 'no app handler ran for the probes')

      const post = await client.get(`${url}/healthz`, { method: 'POST' })
      t.equal(post.status, 404, 'other methods go to the app')

      const hello = await client.get(`${url}/`)
      t.equal(hello.status, 200)
      t.equal(app.calls, 1)
    })

    t.test('probe paths are configurable and can be disabled', async (t) => {
      const { logger } = captureLogs()
      const running = await startApp(framework, { logger, livenessPath: '/live', readinessPath: false })
      t.teardown(running.close)
      const live = await client.get(`${running.url}/live`)
      t.equal(live.status, 200)
      t.same(JSON.parse(live.body), { status: 'ok' })
      t.equal((await client.get(`${running.url}/healthz`)).status, 404)
      t.equal((await client.get(`${running.url}/readyz`)).status, 404)
    })

    t.test('a request beyond maxInFlight gets 503 without reaching the handler', async (t) => {
      const logs = captureLogs()
      const running = await startApp(framework, { maxInFlight: 2, recoveryMs: 20, logger: logs.logger })
      t.teardown(running.close)
      const { url, app, guard } = running

      const held = [client.get(`${url}/hold`), client.get(`${url}/hold`)]
      await app.waitHeld(2)

      const refused = await client.getJson(`${url}/hold`)
      t.equal(refused.status, 503)
      t.equal(refused.headers['retry-after'], '5')
      t.match(refused.headers['content-type'], /^application\/json/)
      t.same(JSON.parse(refused.body), overloadedBody)
      t.equal(app.calls, 2, 'the handler ran only for the two admitted requests')

      const asText = await client.get(`${url}/`, { headers: { accept: 'text/plain' } })
      t.equal(asText.status, 503)
      t.match(asText.headers['content-type'], /^text\/plain/)
      t.equal(asText.body, `${MESSAGES.overloaded}\n`)
      t.equal(app.calls, 2)

      const ready = await client.get(`${url}/readyz`)
      t.equal(ready.status, 503)
      t.same(JSON.parse(ready.body), { status: 'overloaded', reason: 'maxInFlight' })
      t.equal((await client.get(`${url}/healthz`)).status, 200, 'liveness stays 200 while overloaded')

      t.match(guard.stats(), { state: 'overloaded', shed: 2, overloadEpisodes: 1, inflight: 2, overload: { reason: 'maxInFlight', value: 3, limit: 2, shed: 2 } })
      t.equal(logs.events('overload.start').length, 1, 'one start event for the episode, not one per request')
      t.match(logs.events('overload.start')[0], { level: 40, reason: 'maxInFlight', value: 3, limit: 2, msg: 'overload started' })

      app.releaseAll()
      for (const response of await Promise.all(held)) t.equal(response.status, 200)
      await until(() => guard.stats().state === 'ok', 'the overload episode to end')
      t.equal(logs.events('overload.end').length, 1)
      t.match(logs.events('overload.end')[0], { level: 30, reason: 'maxInFlight', shed: 2, durationMs: Number })
      t.match(guard.stats(), { state: 'ok', inflight: 0, shed: 2, overloadEpisodes: 1, overload: null })

      t.equal((await client.get(`${url}/`)).status, 200, 'admitted again once below the limit')
      t.equal(app.calls, 3)
    })

    t.test('during a drain: readiness 503, new requests 503, Connection: close everywhere', async (t) => {
      const state = workerState()
      const { logger } = captureLogs()
      const running = await startApp(framework, { logger, retryAfterSeconds: 7 })
      t.teardown(async () => {
        state.draining = false
        await running.close()
      })
      const { url, app, guard } = running

      const held = client.get(`${url}/hold`)
      await app.waitHeld(1)

      // exactly what the worker preload does when the supervisor asks for a drain
      state.draining = true
      state.events.emit('drain')

      const ready = await client.get(`${url}/readyz`)
      t.equal(ready.status, 503)
      t.same(JSON.parse(ready.body), { status: 'draining' })
      t.equal(ready.headers.connection, 'close')

      const live = await client.get(`${url}/healthz`)
      t.equal(live.status, 200, 'the process is still alive')
      t.equal(live.headers.connection, 'close')

      const refused = await client.getJson(`${url}/`)
      t.equal(refused.status, 503)
      t.equal(refused.headers.connection, 'close')
      t.equal(refused.headers['retry-after'], '7')
      t.same(JSON.parse(refused.body), drainingBody)
      t.equal(app.calls, 1, 'the app never saw the request that arrived during the drain')

      app.releaseAll()
      const finished = await held
      t.equal(finished.status, 200, 'a request admitted before the drain completes')
      t.equal(finished.headers.connection, 'close', 'and closes its connection')
      t.match(guard.stats(), { state: 'draining', refusedDraining: 1, shed: 0, admitted: 1 })
    })

    t.test('a burst of loop-blocking requests is shed on event-loop lag', async (t) => {
      const logs = captureLogs()
      const running = await startApp(framework, { maxEventLoopDelayMs: 100, recoveryMs: 20, logger: logs.logger })
      t.teardown(running.close)
      const { server, app, guard } = running

      const responses = await burst(server, '/spin?ms=50', 20)
      const served = responses.filter((response) => response.status === 200).length
      const shed = responses.filter((response) => response.status === 503)
      t.equal(served + shed.length, 20, 'every request got an answer')
      t.ok(served >= 1, 'the first requests were served')
      t.ok(shed.length >= 1, 'later requests of the burst were shed')
      t.equal(app.maxRunning, 1, 'the handlers never overlapped: maxInFlight could not have caught this')
      t.equal(app.calls, served, 'no shed request reached the handler')
      for (const response of shed) {
        t.equal(response.headers['retry-after'], '5')
        t.same(JSON.parse(response.body), overloadedBody)
      }
      t.equal(guard.stats().shed, shed.length)
      const starts = logs.events('overload.start')
      t.ok(starts.length >= 1)
      t.match(starts[0], { reason: 'maxEventLoopDelayMs', limit: 100 })
      t.ok((starts[0]?.value as number) > 100, 'the logged lag is above the limit')
      await until(() => guard.stats().state === 'ok', 'the overload episode to end')
      t.equal(logs.events('overload.end').length, starts.length)
    })
  })
}

t.test('invalid options throw MiddlewareOptionsError from every adapter', async (t) => {
  const invalid = { maxInFlight: 0 }
  const expected = { name: 'MiddlewareOptionsError', issues: ['maxInFlight: expected an integer >= 1 (given: 0)'] }
  t.throws(() => expressGuard(invalid), expected)
  t.throws(() => koaGuard(invalid), expected)
  t.throws(() => protect(() => {}, invalid), expected)
  t.throws(() => protect(() => {}, { errors: 'delegate' } as never), {
    name: 'MiddlewareOptionsError',
    issues: ['errors: unknown key (given: "delegate")'],
  }, 'node:http has nothing to delegate to')

  const app = Fastify()
  app.register(fastifyGuard, invalid)
  await t.rejects(async () => { await app.ready() }, expected)
  await app.close()

  // the error is usable as a value too
  try {
    express().use(expressGuard({ maxInFlightt: 3 } as never))
    t.fail('should have thrown')
  } catch (err) {
    t.ok(err instanceof MiddlewareOptionsError)
    t.same((err as MiddlewareOptionsError).issues, ['maxInFlightt: unknown key, did you mean "maxInFlight"? (given: 3)'])
  }
})
