// `cluster-run logs -f --json` as it reads the control socket's answer: whole lines out,
// and the line that says a new primary took over is seen wherever a read cuts it.
import t from 'tap'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import { PassThrough } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { followLogs } from '../lib/control/logs-command.js'

const LINES = [
  JSON.stringify({ seq: 1, time: 1, line: '{"msg":"one"}', workerId: 0, pid: 11, stream: 'stdout' }),
  JSON.stringify({ seq: 2, time: 2, line: 'two', workerId: 1, pid: 12, stream: 'stderr' }),
].map((l) => l + '\n').join('')
const UPGRADED = JSON.stringify({ upgraded: true }) + '\n'
const STOPPED = JSON.stringify({ stopped: true, exitCode: 0 }) + '\n'

t.test('logs -f --json: the upgrade\'s last line is followed, not printed, wherever the read is cut; every other byte is printed once', async (t) => {
  const first = Buffer.from(LINES + UPGRADED)
  // every cut inside the last two lines, and none
  for (let cut = LINES.length - 20; cut <= first.length; cut++) {
    // a unix socket's path has room for 107 bytes: not under the test's own folder
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cr-follow-'))
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
    const socketPath = path.join(dir, 'c.sock')
    const asked: string[] = []
    const server = http.createServer((req, res) => {
      asked.push(req.url!)
      res.writeHead(200, { 'content-type': 'application/x-ndjson' })
      if (asked.length > 1) return res.end(STOPPED)
      res.write(first.subarray(0, cut))
      // two writes a while apart arrive as two reads
      void sleep(15).then(() => res.end(first.subarray(cut)))
    })
    await new Promise<void>((resolve) => server.listen(socketPath, resolve))
    const out = new PassThrough()
    let printed = ''
    out.setEncoding('utf8').on('data', (s: string) => { printed += s })
    const code = await followLogs(socketPath, { reopen: false, json: true, follow: true, query: new URLSearchParams({ follow: '1' }) }, out as unknown as NodeJS.WriteStream)
    await new Promise<void>((resolve) => server.close(() => resolve()))
    t.equal(code, 0, `cut at ${cut}: exit 0`)
    t.equal(printed, LINES + STOPPED, `cut at ${cut}: the lines, then the new primary's`)
    t.equal(asked.length, 2, `cut at ${cut}: it asked the new primary`)
  }
})
