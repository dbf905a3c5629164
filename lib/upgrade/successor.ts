// The new primary's side of an upgrade: receive the old primary's listening sockets
// before any listen, say when every worker is ready, take over on the commit.
import { isUpgradeMessage, UPGRADE_ENV, type FromNew, type FromOld } from './messages.js'
import { inherit, type ListenSocket, type TcpHandle } from './sockets.js'
import type { Totals } from '../supervisor/plan.js'

export interface Successor {
  /** the old primary's pid */
  readonly from: number
  /** its totals, to count on from */
  readonly totals: Totals
  /** the sockets it handed over */
  readonly sockets: ReadonlyArray<{ address: string, port: number, reusePort: boolean }>
  /** every worker is ready; resolves when this primary is to take over (the commit, or the old one is gone) */
  ready: () => Promise<void>
  /** the control socket's path is ours */
  committed: () => void
  /** the start failed: the old primary goes on; resolves once it is told */
  failed: (message: string, exitCode: number) => Promise<void>
}

/**
 * When this primary was started by an upgrade: receives the sockets (inherited by the
 * listens to come) and returns the upgrade's side of it; otherwise undefined. Consumes
 * the environment variable, so that the workers and a later upgrade do not see it.
 */
export async function joinUpgrade (env: NodeJS.ProcessEnv = process.env): Promise<Successor | undefined> {
  const from = Number(env[UPGRADE_ENV])
  delete env[UPGRADE_ENV]
  if (!Number.isSafeInteger(from) || from <= 0 || !process.send) return undefined
  /** resolves once written (or when there is no one to tell) */
  const tell = (message: FromNew): Promise<void> => new Promise((resolve) => {
    if (!process.connected) return resolve()
    process.send!(message, undefined, undefined, () => resolve())
  })
  let commit!: () => void
  const committing = new Promise<void>((resolve) => { commit = resolve })
  const sockets: ListenSocket[] = []
  let totals: Totals | undefined
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the old primary sent no sockets within 10 s')), 10_000)
    process.on('message', (message: unknown, handle?: unknown) => {
      if (!isUpgradeMessage<FromOld>(message)) return
      switch (message.clusterRunUpgrade) {
        case 'socket':
          if (handle) sockets.push({ address: message.address, port: message.port, handle: handle as TcpHandle, reusePort: message.reusePort === true })
          return
        case 'sockets-sent':
          totals = message.totals
          clearTimeout(timer)
          return resolve()
        case 'commit':
          return commit()
      }
    })
    // The old primary gone (killed, say) before the commit: this one is all there is.
    process.once('disconnect', () => {
      clearTimeout(timer)
      commit()
      resolve()
    })
    void tell({ clusterRunUpgrade: 'hello' })
  })
  inherit(sockets)
  return {
    from,
    totals: totals ?? { exits: {}, reloads: { complete: 0, aborted: 0 }, crashes: 0 },
    sockets: sockets.map(({ address, port, reusePort }) => ({ address, port, reusePort })),
    ready: () => {
      void tell({ clusterRunUpgrade: 'ready' })
      return committing
    },
    committed: () => {
      // nothing more to say: the channel must not keep this process tied to the old one
      void tell({ clusterRunUpgrade: 'committed' }).then(() => { if (process.connected) process.disconnect() })
    },
    failed: (message, exitCode) => tell({ clusterRunUpgrade: 'failed', message, exitCode }),
  }
}
