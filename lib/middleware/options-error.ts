// The error for invalid middleware options; its lines come from ../issues.ts.

export class MiddlewareOptionsError extends Error {
  /** one entry per problem: `key: message (given: <JSON value>)` */
  readonly issues: string[]

  constructor (issues: string[]) {
    super(['invalid cluster-run middleware options:', ...issues.map((issue) => `  - ${issue}`)].join('\n'))
    this.name = 'MiddlewareOptionsError'
    this.issues = issues
  }
}
