// Builds the CLI into dist/bundle/: cli.js (the primary), config-thread.js (the config
// loader's thread: cosmiconfig, zod, jiti), preload.js (the workers' preload), and a
// chunk per shared or optional part (metrics with prom-client). Each process then loads
// a file or two instead of some 150 modules: lighter and quicker to start. The library
// (dist/index.js) stays tsc's output; the source maps point to lib/.
import fs from 'node:fs'
import { build } from 'esbuild'

const { version } = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'))

await build({
  entryPoints: { cli: 'lib/cli.ts', 'config-thread': 'lib/config/thread.ts', preload: 'lib/worker/preload.ts' },
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
    CLUSTER_RUN_CONFIG_THREAD: '"./config-thread.js"',
    CLUSTER_RUN_VERSION: JSON.stringify(version),
  },
  // the CommonJS dependencies (cosmiconfig, pino) require() Node's modules; the entry's
  // hashbang stays on the first line, before this
  banner: { js: "import { createRequire as __cr_createRequire } from 'node:module'; const require = __cr_createRequire(import.meta.url);" },
  logLevel: 'warning',
})
