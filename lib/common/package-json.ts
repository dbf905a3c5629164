// The package.json that governs a directory, found as Node finds it: the first one up
// the tree decides (its name, its "type", its "main"), even when it lacks the field.
import fs from 'node:fs'
import path from 'node:path'

export interface PackageJson {
  /** the file's path */
  file: string
  /** its fields; empty when it is not valid JSON */
  fields: Record<string, unknown>
}

export function nearestPackageJson (dir: string): PackageJson | undefined {
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    const file = path.join(at, 'package.json')
    let text: string | undefined
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch {}
    if (text !== undefined) {
      let fields: unknown
      try {
        fields = JSON.parse(text)
      } catch {}
      return { file, fields: fields !== null && typeof fields === 'object' && !Array.isArray(fields) ? fields as Record<string, unknown> : {} }
    }
    if (path.dirname(at) === at) return undefined
  }
}

/** A string field of the nearest package.json, if it has one. */
export function packageField (dir: string, field: string): string | undefined {
  const value = nearestPackageJson(dir)?.fields[field]
  return typeof value === 'string' && value ? value : undefined
}
