// Fastify plugin: an onRequest hook on the whole app. Typed structurally so
// the package depends neither on fastify nor on fastify-plugin.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Guard } from './guard.js'
import type { GuardOptions } from './options.js'

interface FastifyRequestLike {
  raw: IncomingMessage
}

interface FastifyReplyLike {
  raw: ServerResponse
  code (statusCode: number): FastifyReplyLike
  headers (values: Record<string, string>): FastifyReplyLike
  send (payload?: unknown): FastifyReplyLike
}

type Done = (err?: Error) => void

export interface FastifyInstanceLike {
  addHook (name: 'onRequest', hook: (request: FastifyRequestLike, reply: FastifyReplyLike, done: Done) => void): unknown
  addHook (name: 'onClose', hook: (instance: never, done: Done) => void): unknown
  decorate (name: 'clusterRunGuard', value: Guard): unknown
}

// keys Fastify's register() itself understands; meaningless here but allowed
const REGISTER_KEYS = new Set(['prefix', 'logLevel', 'logSerializers'])

function withoutRegisterKeys (options: object | undefined): GuardOptions | undefined {
  if (options === undefined || options === null || typeof options !== 'object') return options
  return Object.fromEntries(Object.entries(options).filter(([key]) => !REGISTER_KEYS.has(key))) as GuardOptions
}

/**
 * `app.register(fastifyGuard, opts)`. Applies to the whole app (skip-override,
 * as fastify-plugin would set). Refusals are sent as JSON/text 503s; with
 * `errors: 'delegate'` the http-errors 503 goes to the app's error handler,
 * with Retry-After already set on the reply. The guard is available as
 * `app.clusterRunGuard` and is closed with the app.
 */
export function fastifyGuard (instance: FastifyInstanceLike, options: GuardOptions | undefined, done: Done): void {
  let guard: Guard
  try {
    guard = new Guard(withoutRegisterKeys(options))
  } catch (err) {
    // avvio does not catch a callback plugin's throw: report it through done
    done(err as Error)
    return
  }
  instance.decorate('clusterRunGuard', guard)
  instance.addHook('onRequest', (request, reply, next) => {
    const decision = guard.handle(request.raw, reply.raw)
    if (decision === undefined) {
      next()
      return
    }
    if (decision instanceof Error) {
      // a custom error handler does not apply err.headers, so set them first
      reply.headers(decision.headers as Record<string, string>)
      reply.send(decision)
      return
    }
    reply.code(decision.statusCode).headers(decision.headers).send(decision.body)
  })
  instance.addHook('onClose', (_instance, next) => {
    guard.close()
    next()
  })
  done()
}

// Without fastify-plugin: these are the properties it would set.
Object.assign(fastifyGuard, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'cluster-run',
})
