#!/usr/bin/env node
// The `threadline` bin (package.json "bin"). The CLI is TypeScript run through tsx, as
// `npm run token` is, so that `npx threadline` works on a fresh clone with no build step:
// tsx (a dependency) compiles each file on first use and caches it.
import { register } from 'tsx/esm/api'

register()
await import('./main.ts')
