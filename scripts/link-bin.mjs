// In a clone, after `npm ci`: links this package's own bin into node_modules/.bin, as
// npm links the bins of the packages it installs. `node_modules/.bin/cluster-run` (and
// `npx cluster-run`) then run this working tree at once, where npx would otherwise copy
// the package into its cache and build it again (~15 s) before starting anything.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const { bin } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
const binDir = path.join(root, 'node_modules', '.bin')
// installed as a dependency, a package has no node_modules of its own to link into
if (fs.existsSync(path.join(root, 'node_modules'))) {
  fs.mkdirSync(binDir, { recursive: true })
  for (const [name, target] of Object.entries(bin)) {
    const link = path.join(binDir, name)
    fs.rmSync(link, { force: true })
    fs.symlinkSync(path.relative(binDir, path.join(root, target)), link)
    fs.chmodSync(path.join(root, target), 0o755)
  }
}
