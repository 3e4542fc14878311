// The Threadline SDK: one class, its types, and the pieces an app may swap (outbox storage).
export { ThreadlineClient } from './client.js'
export { MemoryOutboxStorage } from './outbox-storage.js'
export { backoffDelay } from './backoff.js'
export type * from './types.js'
