// How cluster-run writes a TCP address in its events and messages.

/** 127.0.0.1:3000, [::]:3000: an IPv6 host in brackets, as in a URL. */
export function hostPort (host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}
