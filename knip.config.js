// knip: files, exports and dependencies nothing uses (`npm test` fails on any). The
// tests are entries: a pure module's functions exported for its unit tests count as used.
export default {
  entry: [
    // what ships (besides package.json's exports): the bin, and the files it forks
    'lib/cli.ts',
    'lib/worker/preload.ts',
    'lib/config/reader.ts',
    'tests/**/*.test.ts',
    // run as a process of its own by a test
    'tests/helpers/sequential-client.ts',
    'bench/*-primary.js',
    'bench/apps/*.js',
    'scripts/*.mjs',
    'fixtures/**/*.{js,mjs,cjs,ts,mts,cts}',
    'cluster.config.example.ts',
  ],
  project: ['lib/**/*.ts', 'tests/**/*.ts', 'bench/**/*.js', 'scripts/*.mjs', 'fixtures/**/*.{js,mjs,cjs,ts,mts,cts}'],
  // read by path, not imported: bench/lib/contenders.js starts node_modules/pm2/bin/pm2-runtime;
  // the dashboard serves uplot/dist/uPlot.iife.min.js to the browser
  ignoreDependencies: ['pm2', 'uplot'],
  // Debian's, installed by .ci/run where the tests need them
  ignoreBinaries: ['unshare', 'systemd-analyze', 'script', 'systemd-notify', 'systemd-socket-activate'],
}
