// The Threadline SDK: one class, its types, and the pieces an app may swap or reuse.
export { ThreadlineClient } from './client.js'
export { MemoryOutboxStorage } from './outbox-storage.js'
export { ThreadlineApiError, ThreadlineSendError } from './http.js'
export { backoffDelay } from './backoff.js'
export type * from './types.js'
