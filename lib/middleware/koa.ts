// Koa middleware: async (ctx, next). Typed structurally so the package does
// not need koa's types.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Guard } from './guard.js'
import type { GuardOptions } from './options.js'

/** The part of a Koa context the middleware touches. */
interface KoaContextLike {
  req: IncomingMessage
  res: ServerResponse
  status: number
  body: unknown
  set (field: string, value: string): void
}

export interface KoaGuardMiddleware {
  (ctx: KoaContextLike, next: () => Promise<unknown>): Promise<unknown> | undefined
  readonly guard: Guard
}

/**
 * `app.use(koaGuard(opts))`, first. Refusals are set as the response; with
 * `errors: 'delegate'` an http-errors 503 is thrown instead, for upstream
 * error middleware or Koa's default handler (which applies `err.headers`).
 */
export function koaGuard (options?: GuardOptions): KoaGuardMiddleware {
  const guard = new Guard(options)
  // not async: no extra promise for requests that pass
  const middleware = (ctx: KoaContextLike, next: () => Promise<unknown>): Promise<unknown> | undefined => {
    const decision = guard.handle(ctx.req, ctx.res)
    if (decision === undefined) return next()
    if (decision instanceof Error) throw decision
    ctx.status = decision.statusCode
    for (const [name, value] of Object.entries(decision.headers)) {
      // Koa computes the length from the body
      if (name !== 'Content-Length') ctx.set(name, value)
    }
    // Content-Type is already set, so Koa keeps it for the string body
    ctx.body = decision.body
    return undefined
  }
  return Object.assign(middleware, { guard })
}
