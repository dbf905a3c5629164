// The key a sticky connection is placed by: the client's address, or a request
// header (e.g. x-forwarded-for behind a proxy), read from the first request's head.

/** Stop reading a request head after this many bytes: the key is then the address. */
export const MAX_HEAD_BYTES = 16 * 1024

/** The end of the request head (after the blank line), or -1 while incomplete. */
export function headEnd (head: Buffer): number {
  const at = head.indexOf('\r\n\r\n')
  return at === -1 ? -1 : at + 4
}

/**
 * The first value of `header` in a request head (case-insensitive name; for a list
 * such as x-forwarded-for, its first item: the original client), or undefined.
 */
export function headerValue (head: Buffer, header: string): string | undefined {
  const end = headEnd(head)
  const text = head.toString('latin1', 0, end === -1 ? head.length : end)
  const wanted = header.toLowerCase()
  for (const line of text.split('\r\n').slice(1)) {
    const colon = line.indexOf(':')
    if (colon <= 0 || line.slice(0, colon).trim().toLowerCase() !== wanted) continue
    const value = line.slice(colon + 1).split(',')[0].trim()
    return value || undefined
  }
  return undefined
}
