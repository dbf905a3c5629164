// The token the dashboard's actions need: a file beside the control socket that only its
// owner can read, so that whoever can read it could run `cluster-run reload` anyway. It is
// kept across restarts and upgrades of the primary (an open page keeps working) and made
// anew when missing, or when it is not a private file of this user.
import crypto from 'node:crypto'
import fs from 'node:fs'

const TOKEN = /^[A-Za-z0-9_-]{43}$/

/** The token in `file`, made (0600) when there is no usable one. */
export function dashboardToken (file: string, uid = process.getuid?.() ?? -1): string {
  try {
    const stat = fs.lstatSync(file)
    const text = fs.readFileSync(file, 'utf8').trim()
    if (stat.isFile() && (uid < 0 || stat.uid === uid) && (stat.mode & 0o077) === 0 && TOKEN.test(text)) return text
  } catch {}
  const token = crypto.randomBytes(32).toString('base64url')
  // written aside and renamed: nobody ever reads half a token, and a link at `file` is replaced, not followed
  const aside = `${file}.${process.pid}.tmp`
  fs.writeFileSync(aside, `${token}\n`, { mode: 0o600, flag: 'wx' })
  fs.renameSync(aside, file)
  return token
}

/** Whether an `Authorization: Bearer …` header carries `token` (compared in constant time). */
export function bearerMatches (header: string | undefined, token: string): boolean {
  const given = /^Bearer ([A-Za-z0-9_-]{1,100})$/.exec(header ?? '')?.[1]
  if (given === undefined) return false
  const a = Buffer.from(given)
  const b = Buffer.from(token)
  return a.length === b.length && crypto.timingSafeEqual(a, b)
}
