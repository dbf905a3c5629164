// What the old and the new primary say to each other over the IPC channel of an
// upgrade, in order:
//
//   new → old  hello          ready to receive the sockets
//   old → new  socket × n     each with its listening handle attached
//   old → new  sockets-sent
//   new → old  ready          every worker of the new primary is ready
//   old → new  commit         the old primary has stopped accepting; take the control socket
//   new → old  committed      the control socket's path is the new primary's
//   new → old  failed         (instead of ready) why the new primary did not start; it exits
//
// The old primary then drains its workers and exits. If the new one exits or misses
// its deadline before `ready`, the old one goes on serving (upgrade.aborted).

import type { Totals } from '../supervisor/plan.js'

/** The environment variable that tells a primary it is an upgrade's new primary: the old one's pid. */
export const UPGRADE_ENV = 'CLUSTER_RUN_UPGRADE_FROM'

export type FromNew =
  | { clusterRunUpgrade: 'hello' }
  | { clusterRunUpgrade: 'ready' }
  | { clusterRunUpgrade: 'committed' }
  | { clusterRunUpgrade: 'failed', message: string, exitCode: number }

export type FromOld =
  /** reusePort: bound with SO_REUSEPORT (a reuseport slot's); without it, no socket of that port can bind beside it */
  | { clusterRunUpgrade: 'socket', address: string, port: number, reusePort: boolean }
  | { clusterRunUpgrade: 'sockets-sent', totals: Totals }
  | { clusterRunUpgrade: 'commit' }

export function isUpgradeMessage<T extends FromNew | FromOld> (message: unknown): message is T {
  return typeof message === 'object' && message !== null && typeof (message as { clusterRunUpgrade?: unknown }).clusterRunUpgrade === 'string'
}
