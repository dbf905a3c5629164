// Cluster-level health, from the status snapshot: pure.
import type { ClusterStatus } from '../supervisor/status.js'

export interface Readiness {
  ready: boolean
  /** why not, for the 503's JSON body */
  reason?: string
  workers: { ready: number, desired: number, minReady: number }
}

/**
 * Ready while the cluster runs and at least `minReady` workers are ready: not while it
 * starts (before every worker was ready once), and not once a shutdown has begun (the
 * shutdown delay included), so a load balancer stops sending before the drain.
 */
export function readiness (status: Pick<ClusterStatus, 'state' | 'workers'>, minReady: number): Readiness {
  const workers = { ready: status.workers.ready, desired: status.workers.desired, minReady }
  if (status.state === 'starting') return { ready: false, reason: 'starting: not every worker has been ready yet', workers }
  if (status.state !== 'running') return { ready: false, reason: 'shutting down', workers }
  if (workers.ready < minReady) return { ready: false, reason: `${workers.ready} workers ready, fewer than minReadyWorkers (${minReady})`, workers }
  return { ready: true, workers }
}
