// Validation problems as lines a user can act on: the key, what was expected, what
// was given (and, for the config, where it came from). Shared by the config and the
// middleware options.
import type * as z from 'zod'
import { UsageError } from './errors.js'

/** Edit distance with adjacent transpositions (optimal string alignment), case-insensitive: "jsno" is one edit from "json". */
export function distance (a: string, b: string): number {
  a = a.toLowerCase()
  b = b.toLowerCase()
  let before: number[] = []
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const cur = [i]
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) cur[j] = Math.min(cur[j], before[j - 2] + 1)
    }
    before = prev
    prev = cur
  }
  return prev[b.length]
}

/** The known key closest to `key`, if it is close enough to be a likely typo. */
export function closest (key: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of known) {
    const d = distance(key, candidate)
    if (d < bestDistance) { best = candidate; bestDistance = d }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(best.length / 3)) ? best : undefined
}

/** JSON for a message: short, and never throwing (a logger object may be circular). */
export function describeValue (value: unknown): string {
  if (value === undefined) return 'nothing'
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'symbol') return String(value)
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch {}
  if (json === undefined) return Object.prototype.toString.call(value)
  return json.length > 80 ? `${json.slice(0, 77)}...` : json
}

export interface IssueContext {
  /** the valid keys of the object at a dotted path ('' for the top) */
  knownKeys: (at: string) => readonly string[]
  /** where the value at a path came from ('environment', a file), if known */
  sourceOf?: (path: readonly PropertyKey[]) => string | undefined
}

/** One line per problem, every problem at once. */
export function formatIssues (issues: readonly z.core.$ZodIssue[], input: unknown, context: IssueContext): string[] {
  const lines: string[] = []
  const given = (path: readonly PropertyKey[]): string => {
    const source = context.sourceOf?.(path)
    return `(given: ${describeValue(valueAt(input, path))}${source ? `, from ${source}` : ''})`
  }
  for (const issue of issues) {
    const at = issue.path.map(String).join('.')
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key]
        const suggestion = closest(key, context.knownKeys(at))
        lines.push(`${path.join('.')}: unknown key${suggestion ? `, did you mean "${suggestion}"?` : ''} ${given(path)}`)
      }
      continue
    }
    lines.push(`${at || '(root)'}: ${issue.message} ${given(issue.path)}`)
  }
  return lines
}

function valueAt (input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<PropertyKey, unknown>)[key]
  }
  return value
}

/** node:util's parse error as a usage error, with the likely option for an unknown one. */
export function usageOf (err: unknown, options: Record<string, unknown>, prefix = ''): UsageError {
  const message = (err as Error).message
  const unknown = /^Unknown option '(-{1,2}[^']+)'/.exec(message)?.[1]
  if (!unknown) return new UsageError(`${prefix}${message}`)
  const near = unknown.startsWith('--') ? closest(unknown.slice(2), Object.keys(options)) : undefined
  return new UsageError(`${prefix}unknown option ${unknown}${near ? `: did you mean --${near}?` : ''}`)
}
