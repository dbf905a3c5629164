// Typed errors: the CLI maps each to its exit code, run() rejects with them.

/** The configuration is invalid, or could not be loaded (exit 78, EX_CONFIG). */
export class ConfigError extends Error {
  override name = 'ConfigError'
  readonly exitCode = 78
  /** one line per problem: `key: what was expected (given: what was given)` */
  readonly issues: string[]
  constructor (message: string, issues: string[] = [], options?: ErrorOptions) {
    super(issues.length ? `${message}\n  - ${issues.join('\n  - ')}` : message, options)
    this.issues = issues
  }
}

/** The command line is wrong (exit 64, EX_USAGE). */
export class UsageError extends Error {
  override name = 'UsageError'
  readonly exitCode = 64
}

/** The cluster could not start or stopped on its own: crash rate, boot failure (exit 1 or 3). */
export class ClusterError extends Error {
  override name = 'ClusterError'
  constructor (message: string, readonly exitCode: number, readonly cause?: unknown) {
    super(message)
  }
}

/** Something the primary must open before any fork could not be: the control socket, the metrics port (exit 73, or 77 for an unsafe socket directory). */
export class StartError extends ClusterError {
  override name = 'StartError'
}
