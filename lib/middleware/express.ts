// Connect / Express middleware: (req, res, next).
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Guard } from './guard.js'
import { writeReply } from './node-http.js'
import type { GuardOptions } from './options.js'

export interface ExpressGuardMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void
  readonly guard: Guard
}

/**
 * `app.use(expressGuard(opts))`, before any other middleware. Refusals are
 * sent as JSON/text 503s; with `errors: 'delegate'` they go to `next(err)`
 * instead, an http-errors 503 whose `headers` carry Retry-After.
 */
export function expressGuard (options?: GuardOptions): ExpressGuardMiddleware {
  const guard = new Guard(options)
  const middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
    const decision = guard.handle(req, res)
    if (decision === undefined) next()
    else if (decision instanceof Error) next(decision)
    else writeReply(res, decision)
  }
  return Object.assign(middleware, { guard })
}
