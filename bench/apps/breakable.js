// The hello-world app (hello.js), except that it fails at boot while the file named
// by BREAK_FILE exists: the upgrade table's aborted upgrade.
import fs from 'node:fs'

if (process.env.BREAK_FILE && fs.existsSync(process.env.BREAK_FILE)) throw new Error('boot failure: the break file exists')
await import('./hello.js')
