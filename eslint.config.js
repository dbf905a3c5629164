// neostandard (standard's rules for ESLint 9, with TypeScript) over the whole repository.
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'coverage/**', '.tap/**', 'node_modules/**'],
  }),
  {
    rules: {
      // `void promise` marks a promise left unawaited on purpose (its errors are handled)
      'no-void': ['error', { allowAsStatement: true }],
    },
  },
]
