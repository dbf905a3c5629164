// The responses the middleware sends on its own: 503 refusals (made with
// http-errors, rendered as JSON or text) and the health probe answers. Bodies
// are rendered once up front so a refusal costs no JSON work per request.
import { STATUS_CODES } from 'node:http'
import createError from 'http-errors'
import type { LimitName } from './limits.js'
import type { BodyFormat } from './negotiate.js'

export type RefusalReason = LimitName | 'draining'
export type HttpError = createError.HttpError

/** A complete response: adapters write it as is. Headers are shared, never mutate them. */
export interface GuardReply {
  readonly statusCode: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

export const MESSAGES = {
  overloaded: 'The server is overloaded; retry later.',
  draining: 'The server is shutting down; retry the request.',
} as const

const JSON_TYPE = 'application/json; charset=utf-8'
const TEXT_TYPE = 'text/plain; charset=utf-8'

function reply (statusCode: number, body: string, contentType: string, extra: Record<string, string>): GuardReply {
  const headers = Object.freeze({
    'Content-Type': contentType,
    'Content-Length': String(Buffer.byteLength(body)),
    'Cache-Control': 'no-store',
    ...extra,
  })
  return Object.freeze({ statusCode, headers, body })
}

/** Headers every refusal carries; Koa and Express apply an error's `headers`. */
function refusalHeaders (retryAfterSeconds: number, draining: boolean): Record<string, string> {
  const headers: Record<string, string> = { 'Retry-After': String(retryAfterSeconds) }
  if (draining) headers.Connection = 'close'
  return headers
}

/** The 503 as an http-errors error; `expose` so frameworks show the message and do not log it as a crash. */
export function refusalError (reason: RefusalReason, retryAfterSeconds: number, draining: boolean): HttpError {
  const message = reason === 'draining' ? MESSAGES.draining : MESSAGES.overloaded
  return createError(503, message, { headers: refusalHeaders(retryAfterSeconds, draining), expose: true, reason })
}

/** Renders an http-errors error the way Fastify's default handler does: {statusCode, error, message}. */
export function renderError (error: HttpError, format: BodyFormat): GuardReply {
  const statusCode = error.statusCode
  const headers = (error.headers ?? {}) as Record<string, string>
  if (format === 'text') return reply(statusCode, `${error.message}\n`, TEXT_TYPE, headers)
  const body = JSON.stringify({ statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message: error.message })
  return reply(statusCode, body, JSON_TYPE, headers)
}

/** Pre-rendered refusals for one retry-after value, indexed by [draining][format]. */
export interface RefusalReplies {
  overloaded: Record<BodyFormat, GuardReply>
  draining: Record<BodyFormat, GuardReply>
}

export function renderRefusals (retryAfterSeconds: number): RefusalReplies {
  const overloaded = refusalError('maxInFlight', retryAfterSeconds, false)
  const draining = refusalError('draining', retryAfterSeconds, true)
  return {
    overloaded: { json: renderError(overloaded, 'json'), text: renderError(overloaded, 'text') },
    draining: { json: renderError(draining, 'json'), text: renderError(draining, 'text') },
  }
}

export type HealthStatus = 'ok' | 'draining' | 'overloaded'

/** Small JSON probe answer: 200 when status is ok, 503 otherwise. */
export function healthReply (status: HealthStatus, draining: boolean, reason?: LimitName): GuardReply {
  const body = JSON.stringify(reason === undefined ? { status } : { status, reason })
  return reply(status === 'ok' ? 200 : 503, body, JSON_TYPE, draining ? { Connection: 'close' } : {})
}
