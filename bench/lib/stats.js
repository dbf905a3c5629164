// Small numeric and formatting helpers: percentiles, medians, markdown tables.

/** Nearest-rank percentile of an already sorted array; null when empty. */
function percentile (sorted, p) {
  if (sorted.length === 0) return null
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

/** n, mean, p50, p99, max of a list of latencies (ms). */
export function summarize (values) {
  const sorted = Float64Array.from(values).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    n: sorted.length,
    mean: sorted.length ? sum / sorted.length : null,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
  }
}

/** Median of the non-null numbers; null if there are none. */
export function median (values) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b)
  if (xs.length === 0) return null
  const mid = Math.floor(xs.length / 2)
  return xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2
}

export function max (values) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v))
  return xs.length ? Math.max(...xs) : null
}

export function ratio (a, b) {
  return typeof a === 'number' && typeof b === 'number' && b !== 0 ? a / b : null
}

/** Fixed decimals, thousands kept plain; '–' for missing values. */
export function fmt (value, decimals = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return '–'
  if (typeof value !== 'number') return String(value)
  return value.toFixed(decimals)
}

export function fmtRatio (value) {
  return value === null ? '–' : `${value.toFixed(2)}×`
}

export function verdict (ok) {
  if (ok === null || ok === undefined) return 'n/a'
  return ok ? 'PASS' : 'MISS'
}

/** A GitHub-flavoured markdown table; `align` is a string of l/r per column. */
export function table (header, rows, align = '') {
  const cells = [header, ...rows].map((row) => row.map((c) => String(c ?? '')))
  const widths = header.map((_, i) => Math.max(3, ...cells.map((r) => r[i].length)))
  const pad = (s, i) => (align[i] === 'r' ? s.padStart(widths[i]) : s.padEnd(widths[i]))
  const line = (row) => `| ${row.map(pad).join(' | ')} |`
  const rule = `|${widths.map((w, i) => (align[i] === 'r' ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n')
}
