// `cluster-run startup`: the systemd units for the app in the current directory,
// written from what the config says (its name, its drain times), with every path
// absolute. examples/systemd/ is this output.

export interface UnitFacts {
  name: string
  /** the user the service runs as */
  user: string
  workingDirectory: string
  /** absolute paths of node and of cluster-run's CLI */
  node: string
  cli: string
  /** what follows `cluster-run` on the command line (an entry, flags) */
  args: string[]
  shutdownDelayMs: number
  shutdownTimeoutMs: number
  /** with a socket unit: what it listens on (ListenStream=: a port, or address:port) */
  socket?: string
  /** the startup command that printed the service unit, and the one that prints the socket unit */
  printedBy: string
}

/** The command that prints the socket unit, from the one that printed the service. */
function socketCommand (printedBy: string): string {
  return printedBy.replace(/^(\S+ startup)/, '$1 --socket-unit')
}

/** A word of ExecStart, quoted when it must be (systemd's own quoting: double quotes, backslash escapes). */
function word (text: string): string {
  const escaped = text.replace(/%/g, '%%').replace(/\$/g, '$$$$')
  return /^[\w@%+=:,./-]+$/.test(text) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

/** The seconds systemd waits for a stop: the drain's, and a margin, after which it kills the unit's processes. */
function stopSeconds ({ shutdownDelayMs, shutdownTimeoutMs }: Pick<UnitFacts, 'shutdownDelayMs' | 'shutdownTimeoutMs'>): number {
  return Math.ceil((shutdownDelayMs + shutdownTimeoutMs) / 1000) + STOP_MARGIN_S
}

/** What systemd waits beyond the drain before it kills: the primary's own exit, the log flushed. */
const STOP_MARGIN_S = 5

function seconds (ms: number): string {
  return `${ms / 1000} s`
}

export function serviceUnit (facts: UnitFacts): string {
  const { name, user, workingDirectory, node, cli, args, socket, printedBy } = facts
  const stop = stopSeconds(facts)
  const lines = [
    `# ${name} under cluster-run, as a systemd service. Install (in ${workingDirectory}):`,
    `#   ${printedBy} | sudo tee /etc/systemd/system/${name}.service`,
    ...socket ? [`#   ${socketCommand(printedBy)} | sudo tee /etc/systemd/system/${name}.socket`] : [],
    `#   sudo systemctl daemon-reload && sudo systemctl enable --now ${name}${socket ? '.socket' : ''}`,
    `#   sudo systemctl reload ${name}      # zero-downtime reload of the workers (SIGHUP)`,
    `#   sudo systemctl kill -s USR2 ${name} # a new primary (Node, cluster-run) takes over, no connection refused`,
    `#   sudo systemctl stop ${name}        # graceful drain (SIGTERM)`,
    '',
    '[Unit]',
    `Description=${name} (cluster-run)`,
    'After=network-online.target',
    'Wants=network-online.target',
    ...socket ? [`Requires=${name}.socket`, `After=${name}.socket`] : [],
    '# A crash loop that does restart is bounded: at most 5 starts in 2 minutes.',
    'StartLimitIntervalSec=120',
    'StartLimitBurst=5',
    '',
    '[Service]',
    '# Ready (READY=1) once every worker is; RELOADING=1 … READY=1 around a reload;',
    '# STATUS= the worker count. An upgrade\'s new primary says MAINPID=: the messages',
    '# come from systemd-notify, not from the main process itself, hence NotifyAccess=all.',
    'Type=notify',
    'NotifyAccess=all',
    `User=${user}`,
    `WorkingDirectory=${workingDirectory}`,
    'Environment=NODE_ENV=production',
    '# The control socket (`cluster-run status`, `reload`, `upgrade`, `logs`) in a runtime',
    '# directory of the unit, owner-only; from a shell:',
    `#   sudo -u ${user} env CLUSTER_RUN_HOME=/run/cluster-run ${word(node)} ${word(cli)} status`,
    'RuntimeDirectory=cluster-run',
    'RuntimeDirectoryMode=0700',
    'Environment=CLUSTER_RUN_HOME=%t/cluster-run',
    `ExecStart=${[node, cli, ...args].map(word).join(' ')}`,
    'ExecReload=/bin/kill -HUP $MAINPID',
    '# Stop: SIGTERM to the primary only, which drains the workers; the default',
    '# KillMode=control-group would signal the workers too, and cut the drain short.',
    'KillMode=mixed',
    'KillSignal=SIGTERM',
    `# shutdownDelayMs + shutdownTimeoutMs + margin = ${seconds(facts.shutdownDelayMs)} + ${seconds(facts.shutdownTimeoutMs)} + ${STOP_MARGIN_S} s = ${stop} s;`,
    '# then SIGKILL to every process of the unit',
    `TimeoutStopSec=${stop}`,
    '# Restart after a crash, but not after exit 3 (the app fails at boot) or 78',
    '# (invalid config): those fail the same way on every start.',
    'Restart=on-failure',
    'RestartSec=2',
    'RestartPreventExitStatus=3 78',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'LimitNOFILE=65536',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ]
  return lines.join('\n')
}

/** The socket unit: systemd holds the port, so a restart of the whole service refuses no connection. */
export function socketUnit ({ name, socket, printedBy }: Pick<UnitFacts, 'name' | 'socket' | 'printedBy'>): string {
  return [
    `# The port of ${name}, held by systemd (printed by \`${socketCommand(printedBy)}\`):`,
    '# connections wait in its queue while the service starts or restarts, and the',
    '# app\'s listen() on that port is served on this socket (LISTEN_FDS).',
    '',
    '[Unit]',
    `Description=${name} (cluster-run) socket`,
    '',
    '[Socket]',
    `ListenStream=${socket}`,
    `FileDescriptorName=${name}`,
    'Backlog=511',
    '',
    '[Install]',
    'WantedBy=sockets.target',
    '',
  ].join('\n')
}
