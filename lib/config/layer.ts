// A layer of config values and where they came from; light enough for the CLI's
// argument parsing, which must not load the schema (zod) into the primary.

export interface Layer {
  /** where these values come from, for error messages: a file path, 'environment', 'command line', 'run()' */
  source: string
  values: Record<string, unknown>
}

/** A number when the text is one (CLUSTER_RUN_WORKERS=4, -w 4), else the text, for validation to judge. */
export function numberOrString (s: string): number | string {
  return /^\s*-?\d+(\.\d+)?\s*$/.test(s) ? Number(s) : s
}
