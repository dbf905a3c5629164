// Plain node:http: wrap the request listener.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Guard } from './guard.js'
import { httpOptionsSchema, parseOptions, type HttpGuardOptions } from './options.js'
import type { GuardReply } from './responses.js'

/** Writes a guard reply on a raw response (Express and node:http). */
export function writeReply (res: ServerResponse, reply: GuardReply): void {
  res.writeHead(reply.statusCode, reply.headers)
  res.end(reply.body)
}

export interface ProtectedListener<Req extends IncomingMessage, Res extends ServerResponse> {
  (req: Req, res: Res): void
  readonly guard: Guard
}

/**
 * Wraps a request listener: health probes, drain and overload refusals are
 * answered before the listener runs. `http.createServer(protect(app, opts))`.
 */
export function protect<Req extends IncomingMessage = IncomingMessage, Res extends ServerResponse = ServerResponse> (
  listener: (req: Req, res: Res) => void,
  options?: HttpGuardOptions
): ProtectedListener<Req, Res> {
  if (typeof listener !== 'function') throw new TypeError('protect(listener, options): listener must be a function')
  // no framework to delegate to here, so this schema has no `errors` key
  const guard = new Guard(parseOptions(httpOptionsSchema, options))
  const protectedListener = (req: Req, res: Res): void => {
    const decision = guard.handle(req, res)
    if (decision === undefined) {
      listener(req, res)
      return
    }
    writeReply(res, decision as GuardReply)
  }
  return Object.assign(protectedListener, { guard })
}
