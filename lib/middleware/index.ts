// Worker-side middleware: health probes, drain refusals and overload shedding,
// one core (Guard) with thin adapters per framework. This is the public
// `cluster-run/middleware` entry point: only the documented API is exported
// here; the internals are imported from their own modules.
export { Guard, createGuard } from './guard.js'
export type { GuardStats } from './guard.js'
export { protect } from './node-http.js'
export { expressGuard } from './express.js'
export { fastifyGuard } from './fastify.js'
export { koaGuard } from './koa.js'
export type { GuardOptions, HttpGuardOptions } from './options.js'
export { MiddlewareOptionsError } from './options-error.js'
