// How the commands print a duration and a size.

/** 2h 3m, 41m, 12s, 3d 4h. */
export function duration (ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000))
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h ${m % 60}m`
  return `${Math.floor(h / 24)}d ${h % 24}h`
}

export function megabytes (bytes: number | null): string {
  return bytes === null ? '-' : `${Math.round(bytes / 1e6)} MB`
}
