import { Failure } from '../../schemas/index.js'
import type { SyncApiDeps } from '../deps.js'

export interface RouteOptions { deps: SyncApiDeps }

/** The failures every authenticated route may answer, documented once for OpenAPI. */
export const errorResponses = { '4xx': Failure, 503: Failure } as const
