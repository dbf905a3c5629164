// Turns zod issues into messages a user can act on: the key, what was expected,
// and the value actually given.
import type { z } from 'zod'

export class MiddlewareOptionsError extends Error {
  /** one entry per problem: `key: message (given: <JSON value>)` */
  readonly issues: string[]

  constructor (issues: string[]) {
    super(['invalid cluster-run middleware options:', ...issues.map((issue) => `  - ${issue}`)].join('\n'))
    this.name = 'MiddlewareOptionsError'
    this.issues = issues
  }
}

/** JSON for the message, short and never throwing (a logger object may be circular). */
export function describeValue (value: unknown): string {
  if (value === undefined) return 'undefined'
  if (typeof value === 'function') return '[function]'
  if (typeof value === 'bigint') return `${value}n`
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch {
    json = undefined
  }
  if (json === undefined) return Object.prototype.toString.call(value)
  return json.length > 80 ? `${json.slice(0, 77)}...` : json
}

function valueAt (input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<PropertyKey, unknown>)[key]
  }
  return value
}

function keyName (path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(options)' : path.map(String).join('.')
}

/** A known key close to an unknown one, to catch typos such as `maxInflight`. */
export function closestKey (unknown: string, known: readonly string[]): string | undefined {
  const lower = unknown.toLowerCase()
  let best: string | undefined
  let bestDistance = 3
  for (const key of known) {
    const distance = key.toLowerCase() === lower ? 0 : editDistance(lower, key.toLowerCase())
    if (distance < bestDistance) {
      best = key
      bestDistance = distance
    }
  }
  return best
}

function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution)
    }
    previous = current
  }
  return previous[b.length]!
}

export function formatIssues (issues: readonly z.core.$ZodIssue[], input: unknown, knownKeys: readonly string[]): string[] {
  const lines: string[] = []
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key]
        const suggestion = closestKey(key, knownKeys)
        const expected = suggestion === undefined ? 'unknown option' : `unknown option, did you mean "${suggestion}"?`
        lines.push(`${keyName(path)}: ${expected} (given: ${describeValue(valueAt(input, path))})`)
      }
      continue
    }
    lines.push(`${keyName(issue.path)}: ${issue.message} (given: ${describeValue(valueAt(input, issue.path))})`)
  }
  return lines
}
