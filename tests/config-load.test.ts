// loadConfigFile(): every search place is found and loaded, --config loads the named
// file, and every config file that exists but cannot be used is a ConfigError (exit
// 78), never a silent fall back to the defaults.
import t, { type Test } from 'tap'
import path from 'node:path'
import fs from 'node:fs'
import { pathToFileURL } from 'node:url'
import { loadConfigFile } from '../lib/config/load.js'
import { SEARCH_PLACES } from '../lib/config/places.js'
import { ConfigError } from '../lib/common/errors.js'
import { ROOT } from './helpers/cli.js'
import { rejected } from './helpers/errors.js'

const SCHEMA_URL = pathToFileURL(path.join(ROOT, 'lib/config/schema.ts')).href

type Dir = Parameters<typeof t.testdir>[0]

/**
 * One subtest per case, each with its own directory: t.testdir() reuses one path per
 * test, and the same path imported twice would come from the ESM module cache.
 */
async function eachCase<C> (t: Test, cases: C[], name: (c: C) => string, fn: (t: Test, c: C) => Promise<void>): Promise<void> {
  for (const [i, c] of cases.entries()) await t.test(`${i + 1}: ${name(c)}`, (t) => fn(t, c))
}

/** Expects loadConfigFile to reject with a ConfigError; returns it. */
const configError = (t: Test, cwd: string, file?: string): Promise<ConfigError> =>
  rejected(t, () => loadConfigFile(cwd, file), ConfigError, { name: 'ConfigError', exitCode: 78 }, 'loadConfigFile')

// ── every format, found by the search ─────────────────────────────────────────

const ESM = (workers: number) => `export default { app: 'server.js', workers: ${workers} }\n`
const CJS = (workers: number) => `module.exports = { app: 'server.js', workers: ${workers} }\n`

const FORMATS: Array<{ name: string, files: Dir, workers: number }> = [
  { name: 'package.json#cluster', files: { 'package.json': JSON.stringify({ name: 'p', cluster: { app: 'server.js', workers: 2 } }) }, workers: 2 },
  { name: '.clusterrc', files: { '.clusterrc': 'app: server.js\nworkers: 3\n' }, workers: 3 },
  { name: '.clusterrc', files: { '.clusterrc': '{ "app": "server.js", "workers": 4 }\n' }, workers: 4 },
  { name: '.clusterrc.json', files: { '.clusterrc.json': '{ "app": "server.js", "workers": 5 }\n' }, workers: 5 },
  { name: '.clusterrc.yaml', files: { '.clusterrc.yaml': '# yaml\napp: server.js\nworkers: 6\n' }, workers: 6 },
  { name: '.clusterrc.yml', files: { '.clusterrc.yml': 'app: server.js\nworkers: 7\n' }, workers: 7 },
  { name: '.clusterrc.js', files: { 'package.json': '{ "type": "module" }', '.clusterrc.js': ESM(8) }, workers: 8 },
  { name: '.clusterrc.js', files: { 'package.json': '{ "type": "commonjs" }', '.clusterrc.js': CJS(9) }, workers: 9 },
  { name: '.clusterrc.cjs', files: { '.clusterrc.cjs': CJS(10) }, workers: 10 },
  { name: '.clusterrc.mjs', files: { '.clusterrc.mjs': ESM(11) }, workers: 11 },
  { name: '.clusterrc.ts', files: { '.clusterrc.ts': 'const workers: number = 12\nexport default { app: \'server.js\', workers }\n' }, workers: 12 },
  {
    name: 'cluster.config.ts',
    files: {
      'cluster.config.ts': [
        `import { defineConfig } from '${SCHEMA_URL}'`,
        "import { workerCount } from './shared.js'",
        "import { double } from './lib/double.ts'",
        'export default defineConfig({ app: \'server.js\', workers: double(workerCount()) })',
        '',
      ].join('\n'),
      'shared.ts': 'export function workerCount (): number { return 6 + 1 }\n',
      lib: { 'double.ts': 'export const double = (n: number): number => n * 2\n' },
    },
    workers: 14,
  },
  { name: 'cluster.config.mts', files: { 'cluster.config.mts': 'interface C { app: string, workers: number }\nconst c: C = { app: \'server.js\', workers: 15 }\nexport default c\n' }, workers: 15 },
  { name: 'cluster.config.cts', files: { 'cluster.config.cts': 'const workers: number = 16\nmodule.exports = { app: \'server.js\', workers }\n' }, workers: 16 },
  { name: 'cluster.config.js', files: { 'package.json': '{ "type": "module" }', 'cluster.config.js': ESM(17) }, workers: 17 },
  { name: 'cluster.config.mjs', files: { 'cluster.config.mjs': 'const workers = await Promise.resolve(18)\nexport default { app: \'server.js\', workers }\n' }, workers: 18 },
  { name: 'cluster.config.cjs', files: { 'cluster.config.cjs': CJS(19) }, workers: 19 },
  { name: 'cluster.config.json', files: { 'cluster.config.json': '{ "app": "server.js", "workers": 20 }\n' }, workers: 20 },
]

t.test('every search place is found and loaded', async (t) => {
  await eachCase(t, FORMATS, (f) => `${f.name} (workers ${f.workers})`, async (t, { name, files, workers }) => {
    const dir = t.testdir(files)
    const result = await loadConfigFile(dir)
    t.same(result, { config: { app: 'server.js', workers }, filepath: path.join(dir, name.replace('#cluster', '')) })
  })
  t.same(new Set(FORMATS.map((f) => f.name.replace('#cluster', ''))), new Set(SEARCH_PLACES), 'every search place is covered')
})

t.test('search order: the first search place wins; a package.json without "cluster" does not count', async (t) => {
  const dir = t.testdir({
    'package.json': JSON.stringify({ name: 'p', version: '1.0.0' }),
    '.clusterrc.json': '{ "app": "first.js" }',
    'cluster.config.mjs': "export default { app: 'second.js' }",
  })
  t.same(await loadConfigFile(dir), { config: { app: 'first.js' }, filepath: path.join(dir, '.clusterrc.json'), ignored: [path.join(dir, 'cluster.config.mjs')] })
  t.same(await loadConfigFile(dir, 'cluster.config.mjs'), { config: { app: 'second.js' }, filepath: path.join(dir, 'cluster.config.mjs') }, '--config: nothing is ignored')
})

t.test('no config file: undefined', async (t) => {
  await t.test('none at all', async (t) => {
    t.equal(await loadConfigFile(t.testdir({ 'README.md': 'no config here', 'package.json': '{ "name": "p" }' })), undefined)
  })
  await t.test('other names do not count', async (t) => {
    t.equal(await loadConfigFile(t.testdir({ 'other.config.js': 'export default { app: "x" }', 'clusterrc.json': '{ "app": "x" }' })), undefined)
  })
  await t.test('a config in the parent directory is not used', async (t) => {
    const dir = t.testdir({ '.clusterrc.json': '{ "app": "parent.js" }', child: { 'x.txt': '' } })
    t.equal(await loadConfigFile(path.join(dir, 'child')), undefined)
  })
})

t.test('an empty file found by the search is skipped', async (t) => {
  const dir = t.testdir({ '.clusterrc.json': '', '.clusterrc.yaml': '# all commented out\n# workers: 2\n', 'cluster.config.cjs': CJS(2) })
  t.same(await loadConfigFile(dir), { config: { app: 'server.js', workers: 2 }, filepath: path.join(dir, 'cluster.config.cjs') })
})

// ── --config ──────────────────────────────────────────────────────────────────

t.test('--config: loads that file, relative to cwd, even when the search would find another', async (t) => {
  const dir = t.testdir({
    '.clusterrc.json': '{ "app": "searched.js" }',
    sub: {
      'my.json': '{ "app": "chosen.js", "workers": 2 }',
      'my.cjs': CJS(3),
      'my.ts': 'export default { app: \'ts.js\', workers: 4 as number }\n',
      clusterconf: 'app: yaml.js\n',
      'odd-name.conf': 'app: x\n',
    },
  })
  const sub = (f: string): string => path.join(dir, 'sub', f)
  t.same(await loadConfigFile(dir, 'sub/my.json'), { config: { app: 'chosen.js', workers: 2 }, filepath: sub('my.json') })
  t.same(await loadConfigFile(dir, 'sub/my.cjs'), { config: { app: 'server.js', workers: 3 }, filepath: sub('my.cjs') })
  t.same(await loadConfigFile(dir, 'sub/my.ts'), { config: { app: 'ts.js', workers: 4 }, filepath: sub('my.ts') })
  t.same(await loadConfigFile('/', sub('my.json')), { config: { app: 'chosen.js', workers: 2 }, filepath: sub('my.json') }, 'an absolute path')
  t.same(await loadConfigFile(path.join(dir, 'sub'), 'clusterconf'), { config: { app: 'yaml.js' }, filepath: sub('clusterconf') }, 'no extension: read as YAML')
  const err = await configError(t, dir, 'sub/odd-name.conf')
  t.match(err.message, `Cannot load config ${sub('odd-name.conf')}: No loader specified for extension ".conf"`, 'an unknown extension')
})

t.test('--config: a missing file is a ConfigError naming its path', async (t) => {
  const dir = t.testdir({ '.clusterrc.json': '{ "app": "searched.js" }' })
  const err = await configError(t, dir, 'sub/my.json')
  t.match(err.message, `Config file not found: ${path.join(dir, 'sub/my.json')}`)
})

t.test('--config: an empty file or a directory is a ConfigError', async (t) => {
  const dir = t.testdir({ 'empty.json': '  \n', folder: { 'x.json': '{}' } })
  t.match((await configError(t, dir, 'empty.json')).message, `Config file is empty: ${path.join(dir, 'empty.json')}`)
  const err = await configError(t, dir, 'folder')
  t.match(err.message, `Cannot load config ${path.join(dir, 'folder')}`)
  t.match(err.message, 'EISDIR')
})

// ── files that exist but cannot be used ───────────────────────────────────────

t.test('a config that throws at load: ConfigError with the underlying message and the file', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['cluster.config.mjs', "throw new Error('boom from mjs')\n", 'boom from mjs'],
    ['cluster.config.mjs', "await Promise.resolve()\nthrow new Error('boom after await')\n", 'boom after await'],
    ['cluster.config.cjs', "throw new Error('boom from cjs')\n", 'boom from cjs'],
    ['.clusterrc.ts', "const fail = (): never => { throw new Error('boom from ts') }\nexport default fail()\n", 'boom from ts'],
    ['cluster.config.cts', "throw new TypeError('boom from cts')\n", 'boom from cts'],
  ]
  await eachCase(t, cases, ([file, , reason]) => `${file}: ${reason}`, async (t, [file, body, reason]) => {
    const dir = t.testdir({ [file]: body })
    const err = await configError(t, dir)
    t.match(err.message, `Cannot load config ${path.join(dir, file)}: ${reason}`)
    t.match(err.cause, { message: reason }, 'the cause is kept')
    t.match((await configError(t, dir, file)).message, reason, 'the same through --config')
  })
})

t.test('a syntax error in JSON, YAML or a module: ConfigError naming the file', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['.clusterrc.json', '{ "app": "x", }', 'JSON Error'],
    ['package.json', '{ "name": "p", "cluster": { ', 'JSON Error'],
    ['.clusterrc.yaml', 'app: [server.js\nworkers: 2\n', 'YAML Error'],
    ['.clusterrc', 'app: "x\nworkers: 2\n', 'YAML Error'],
    ['cluster.config.mjs', 'export default { app: ', ''],
    ['cluster.config.ts', 'export default { app: "x" as }', ''],
  ]
  await eachCase(t, cases, ([file]) => file, async (t, [file, body, kind]) => {
    const dir = t.testdir({ [file]: body, 'cluster.config.cjs': file === 'cluster.config.cjs' ? body : CJS(2) })
    const err = await configError(t, dir)
    t.match(err.message, `Cannot load config ${path.join(dir, file)}: ${kind}`)
  })
})

t.test('a loader failing with ENOENT/EISDIR/ENOTDIR is a ConfigError, not a fall back to defaults', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['cluster.config.mjs', "import './missing.mjs'\nexport default { app: 'x' }\n", /missing\.mjs/],
    ['cluster.config.mjs', "import fs from 'node:fs'\nfs.readFileSync('nope')\nexport default { app: 'x' }\n", /ENOENT.*nope/],
    ['cluster.config.cjs', "require('fs').readFileSync('nope.txt')\nmodule.exports = { app: 'x' }\n", /ENOENT.*nope\.txt/],
    ['cluster.config.cjs', "require('./missing.cjs')\nmodule.exports = { app: 'x' }\n", /missing\.cjs/],
    ['cluster.config.ts', "import { x } from './missing.js'\nexport default { app: x }\n", /missing/],
    ['.clusterrc.mjs', "import fs from 'node:fs'\nfs.readFileSync(new URL('.', import.meta.url))\nexport default { app: 'x' }\n", /EISDIR/],
    ['.clusterrc.cjs', "require('fs').readFileSync(__filename + '/below')\nmodule.exports = { app: 'x' }\n", /ENOTDIR/],
  ]
  await eachCase(t, cases, ([file, , reason]) => `${file} ${reason}`, async (t, [file, body, reason]) => {
    // a valid config in a later search place must not be used instead
    const dir = t.testdir({ 'cluster.config.cjs': CJS(2), [file]: body })
    const err = await configError(t, dir)
    t.match(err.message, `Cannot load config ${path.join(dir, file)}: `)
    t.match(err.message, reason)
  })
})

t.test('a config that is not an object is a ConfigError', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['cluster.config.mjs', 'export default 42\n', 'number'],
    ['cluster.config.cjs', 'module.exports = [{ app: "x" }]\n', 'an array'],
    ['.clusterrc.json', '[1, 2]', 'an array'],
    ['.clusterrc.json', '"server.js"', 'string'],
    ['.clusterrc.yaml', '- app: x\n', 'an array'],
    ['.clusterrc', 'server.js\n', 'string'],
    ['package.json', JSON.stringify({ name: 'p', cluster: 'server.js' }), 'string'],
    ['cluster.config.ts', 'export default (() => ({ app: "x" }))\n', 'function'],
    ['cluster.config.mjs', 'export default null\n', 'null'],
    ['cluster.config.cjs', 'module.exports = null\n', 'null'],
    ['.clusterrc.json', 'null', 'null'],
    ['cluster.config.mjs', "export const app = 'server.js'\n", 'nothing: no default export'],
  ]
  await eachCase(t, cases, ([file, body]) => `${file} ${JSON.stringify(body)}`, async (t, [file, body, given]) => {
    // a valid config in a later search place must not be used instead
    const dir = t.testdir({ 'cluster.config.cjs': CJS(2), [file]: body })
    const message = `Config file ${path.join(dir, file)} must export an object (given: ${given})`
    t.match((await configError(t, dir)).message, message)
    t.match((await configError(t, dir, file)).message, message, 'the same through --config')
  })
})

t.test('a config file is read anew on every load (a reload sees its changes)', async (t) => {
  for (const name of ['cluster.config.mjs', 'cluster.config.cjs', 'cluster.config.js', 'cluster.config.ts']) {
    const dir = t.testdir({ 'package.json': JSON.stringify({ type: 'module' }) })
    const write = (workers: number): void => fs.writeFileSync(path.join(dir, name), name.endsWith('.cjs')
      ? `module.exports = { app: 'a.js', workers: ${workers} }`
      : `export default { app: 'a.js', workers: ${workers} }`)
    write(1)
    t.equal((await loadConfigFile(dir))?.config.workers, 1, `${name} first`)
    write(2)
    t.equal((await loadConfigFile(dir))?.config.workers, 2, `${name} after a change`)
  }
})
