// One style across the tree: neostandard (the style of Fastify, Aedes and MQTT.js), with
// its TypeScript rules. `npm run lint`; .ci/run runs it before the tests.
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['node_modules/**', 'dist/**', 'bench/results/**', 'data/**', '.tap/**']
  }),
  {
    rules: {
      // TypeBox's idiom: a schema and its static type share one name (schemas/)
      '@typescript-eslint/no-redeclare': 'off',
      // `void promise` marks a promise deliberately not awaited (its errors are handled)
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]
