// Builds the CLI into dist/bundle/: cli.js (the primary), config-reader.js (the config
// reader process: cosmiconfig, zod, jiti), preload.js (the workers' preload), and a
// chunk per shared or optional part (metrics with prom-client). Each process then loads
// a file or two instead of some 150 modules: lighter and quicker to start. The library
// (dist/index.js) stays tsc's output; the source maps point to lib/.
import fs from 'node:fs'
import { builtinModules } from 'node:module'
import { build } from 'esbuild'

const { version } = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'))

// Node's own modules are taken as require() takes them (process.getBuiltinModule), never
// by an ESM import: an import reads every export of the module, and from Node 22 on the
// lazy exports of node:http then load undici, http2, tls and crypto (+13 MB of RSS in
// the primary). A named import becomes a property read at the point of use.
const BUILTIN = new RegExp(`^(node:)?(${builtinModules.map((m) => m.replace(/[/.]/g, '\\$&')).join('|')})$`)
const builtinsLikeRequire = {
  name: 'builtins-like-require',
  setup (b) {
    b.onResolve({ filter: BUILTIN }, (args) => ({ path: args.path.startsWith('node:') ? args.path : `node:${args.path}`, namespace: 'builtin' }))
    b.onLoad({ filter: /.*/, namespace: 'builtin' }, (args) => ({ contents: `module.exports = process.getBuiltinModule(${JSON.stringify(args.path)})`, loader: 'js' }))
  },
}

fs.rmSync('dist/bundle', { recursive: true, force: true })
await build({
  entryPoints: { cli: 'lib/cli.ts', 'config-reader': 'lib/config/reader.ts', preload: 'lib/worker/preload.ts' },
  outdir: 'dist/bundle',
  bundle: true,
  // what is imported only when a feature is on (metrics and prom-client) stays a chunk of its own
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  keepNames: true, // stack traces keep their function names
  sourcemap: true,
  // loaded only when used (TypeScript configs, pretty logs, metrics, TS apps)
  external: ['jiti', 'pino-pretty', 'prom-client', 'tsx', 'typescript'],
  define: {
    CLUSTER_RUN_PRELOAD: '"./preload.js"',
    CLUSTER_RUN_CONFIG_READER: '"./config-reader.js"',
    CLUSTER_RUN_VERSION: JSON.stringify(version),
  },
  // for what the bundle leaves out (see external) when a CommonJS dependency require()s
  // it; the entry's hashbang stays on the first line, before this
  banner: { js: "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);" },
  plugins: [builtinsLikeRequire],
  logLevel: 'warning',
})
