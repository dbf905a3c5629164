// Which configured limit, if any, the current readings exceed. Pure, so the
// shedding rule can be tested without a server.

export type LimitName = 'maxInFlight' | 'maxEventLoopDelayMs' | 'maxEventLoopUtilization' | 'maxHeapUsedBytes' | 'maxRssBytes'

export interface Limits {
  maxInFlight?: number | undefined
  maxEventLoopDelayMs?: number | undefined
  maxEventLoopUtilization?: number | undefined
  maxHeapUsedBytes?: number | undefined
  maxRssBytes?: number | undefined
}

export interface Readings {
  /** requests in flight counting the one being decided on. */
  inflight: number
  lagMs: number
  /** event-loop utilization over the recent window, 0..1 (0 when not measured). */
  utilization: number
  heapUsed: number
  rss: number
}

/** A limit that was passed: `reason` names the option, `value` is the reading, `limit` its bound. */
export interface Exceeded {
  reason: LimitName
  value: number
  limit: number
}

export function hasLimits (limits: Limits): boolean {
  return limits.maxInFlight !== undefined || limits.maxEventLoopDelayMs !== undefined ||
    limits.maxEventLoopUtilization !== undefined || hasMemoryLimits(limits)
}

export function hasMemoryLimits (limits: Limits): boolean {
  return limits.maxHeapUsedBytes !== undefined || limits.maxRssBytes !== undefined
}

/**
 * The first exceeded limit, cheapest checks first; null when all are clear.
 * With `out`, the answer is written into it and returned (nothing allocated:
 * the caller copies what it keeps).
 */
export function firstExceeded (readings: Readings, limits: Limits, out?: Exceeded): Exceeded | null {
  const { maxInFlight, maxEventLoopDelayMs, maxEventLoopUtilization, maxHeapUsedBytes, maxRssBytes } = limits
  if (maxInFlight !== undefined && readings.inflight > maxInFlight) {
    return found(out, 'maxInFlight', readings.inflight, maxInFlight)
  }
  // readings are reported rounded up, so that one just above its limit does not print as equal to it
  if (maxEventLoopDelayMs !== undefined && readings.lagMs > maxEventLoopDelayMs) {
    return found(out, 'maxEventLoopDelayMs', Math.ceil(readings.lagMs * 10) / 10, maxEventLoopDelayMs)
  }
  if (maxEventLoopUtilization !== undefined && readings.utilization > maxEventLoopUtilization) {
    return found(out, 'maxEventLoopUtilization', Math.ceil(readings.utilization * 1000) / 1000, maxEventLoopUtilization)
  }
  if (maxHeapUsedBytes !== undefined && readings.heapUsed > maxHeapUsedBytes) {
    return found(out, 'maxHeapUsedBytes', readings.heapUsed, maxHeapUsedBytes)
  }
  if (maxRssBytes !== undefined && readings.rss > maxRssBytes) {
    return found(out, 'maxRssBytes', readings.rss, maxRssBytes)
  }
  return null
}

function found (out: Exceeded | undefined, reason: LimitName, value: number, limit: number): Exceeded {
  if (out === undefined) return { reason, value, limit }
  out.reason = reason
  out.value = value
  out.limit = limit
  return out
}
