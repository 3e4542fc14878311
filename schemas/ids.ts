import Type from 'typebox'
import { MAX_SAFE_INTEGER } from './storable.js'

// DESIGN.md §2: ids are 1–64 chars of [A-Za-z0-9_.-]
export const ID_PATTERN = '^[A-Za-z0-9_.-]{1,64}$'
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'

const idRe = new RegExp(ID_PATTERN)
const uuidRe = new RegExp(UUID_PATTERN)
export const isId = (s: string): boolean => idRe.test(s)
export const isUuid = (s: string): boolean => uuidRe.test(s)

export const UserId = Type.String({ pattern: ID_PATTERN, description: 'user id: 1–64 chars of [A-Za-z0-9_.-]' })
export const DeviceId = Type.String({ pattern: ID_PATTERN })
export const ConvId = Type.String({ pattern: UUID_PATTERN, description: 'conversation id (UUID)' })
export const Seq = Type.Integer({ minimum: 1, maximum: MAX_SAFE_INTEGER, description: 'per-conversation sequence number' })
export const Timestamp = Type.String({ description: 'ISO 8601 timestamp' })
