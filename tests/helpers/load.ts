// Bounded keep-alive load on 127.0.0.1 with autocannon, stoppable on an event.
import autocannon from 'autocannon'

interface LoadResult {
  requests: number
  ok2xx: number
  non2xx: number
  errors: number
  timeouts: number
  resets: number
  p99: number
}

export interface Load {
  /** stops the load and resolves with its totals */
  stop: () => Promise<LoadResult>
}

/** Starts keep-alive load; it ends by itself after `maxSeconds` at the latest. */
export function startLoad (url: string, { connections = 20, maxSeconds = 60 } = {}): Load {
  let resets = 0
  // with a callback autocannon returns its instance (an emitter), not a promise
  const instance = autocannon({ url, connections, duration: maxSeconds, timeout: 10 }, () => {})
  instance.on('reqError', (err: NodeJS.ErrnoException) => { if (err.code === 'ECONNRESET') resets++ })
  const done = new Promise<LoadResult>((resolve, reject) => {
    instance.once('done', (r: any) => resolve({
      requests: r.requests.total,
      ok2xx: r['2xx'],
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
      resets,
      p99: r.latency.p99,
    }))
    instance.once('error', reject)
  })
  return {
    stop: () => {
      instance.stop()
      return done
    },
  }
}
