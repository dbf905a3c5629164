// The types of client.js, for the tests that drive it (see client.js for what each option does).
export interface LoadOptions {
  port: number
  host?: string
  path?: string
  headers?: Record<string, string> | ((n: number) => Record<string, string>)
  connections?: number
  keepAlive?: boolean
  rate?: number
  durationS?: number
  amount?: number
  timeoutS?: number
}

export interface LoadResult {
  sent: number
  answered: number
  ok: number
  errors: number
  timeouts: number
  failed: number
  unfinished: number
  classes: Record<string, number>
  statuses: Record<string, number>
  errorKinds: Record<string, number>
}

export function startLoad (options: LoadOptions): { done: Promise<LoadResult>, stop: () => Promise<LoadResult> }
