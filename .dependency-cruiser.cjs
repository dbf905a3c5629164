// The rooms of lib/ and the one way their dependencies point (README, "How it works"):
//
//   cli ─► run ─► supervisor ─► config ─► common
//    │      ├──► control ─┘ │ ├──► balancer ─► protocol ─► common
//    │      │      └──► logs ─► common
//    │      ├──► metrics ───┘ └──► protocol
//    │      │      └──► dashboard ─► supervisor (its status), logs, common
//    │      └──► upgrade ─► supervisor (its events), common
//    └──► control (the client commands)
//   worker ─► protocol, common        middleware ─► worker/state, common
//
// npm test runs `depcruise lib`: a cycle between files, or an import against these
// arrows, fails it.
const room = (name) => `^lib/${name}/`

/** A room and the rooms it may import from (besides itself and node's modules). */
const allowed = {
  common: [],
  protocol: ['common'],
  config: ['common'],
  balancer: ['common', 'protocol'],
  supervisor: ['common', 'protocol', 'config', 'balancer'],
  control: ['common', 'supervisor', 'logs', 'dashboard'],
  metrics: ['common', 'supervisor', 'dashboard'],
  dashboard: ['common', 'supervisor', 'logs'],
  worker: ['common', 'protocol'],
  middleware: ['common', 'worker'],
  logs: ['common'],
  upgrade: ['common', 'supervisor'],
}

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'a cycle between files',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...Object.entries(allowed).map(([name, may]) => ({
      name: `${name}-points-down`,
      comment: `lib/${name}/ may import from ${may.length ? may.map((r) => `lib/${r}/`).join(', ') : 'no other room'} only`,
      severity: 'error',
      from: { path: room(name) },
      to: { path: '^lib/', pathNot: [room(name), ...may.map(room)] },
    })),
    {
      name: 'middleware-uses-worker-state-only',
      comment: 'the middleware shares the worker\'s drain state, nothing else of the worker',
      severity: 'error',
      from: { path: room('middleware') },
      to: { path: room('worker'), pathNot: '^lib/worker/state\\.ts$' },
    },
    {
      name: 'top-is-not-imported',
      comment: 'the public face and the command line are entries: nothing in lib/ imports them',
      severity: 'error',
      from: { path: '^lib/' },
      to: { path: '^lib/(index|cli)\\.ts$' },
    },
    {
      name: 'run-is-for-the-top',
      comment: 'run() wires the rooms together; only the public face and the command line use it',
      severity: 'error',
      from: { path: '^lib/', pathNot: '^lib/(index|cli)\\.ts$' },
      to: { path: '^lib/run\\.ts$' },
    },
    {
      name: 'no-orphans',
      comment: 'a file of lib/ that nothing imports and that is no entry',
      severity: 'error',
      from: { orphan: true, path: '^lib/', pathNot: '^lib/(index|cli|worker/preload|config/reader|worker/api|middleware/index)\\.ts$' },
      to: {},
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
}
