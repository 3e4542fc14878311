// PUT and DELETE /v1/devices/:device_id (DESIGN.md §6): a device of the caller registers
// or withdraws its push token. Mounted by the registry under /v1 behind the bearer token.
import type { FastifyPluginAsync } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { APNS_TOKEN_PATTERN, Device, DeviceBody, DeviceParams, Failure, NoContent, ThreadlineError } from '../../schemas/index.js'
import type { Store } from '../../core/store.js'
import { registerDevice, unregisterDevice } from './devices.js'

const tags = ['devices']
const errorResponses = { '4xx': Failure, 503: Failure } as const
const apnsToken = new RegExp(APNS_TOKEN_PATTERN)

export function deviceRoutes (store: Store): FastifyPluginAsync {
  return async (fastify) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>()
    app.put('/devices/:device_id', {
      schema: {
        tags,
        summary: 'Register this device\'s push token (a token registered by another user before moves to you)',
        params: DeviceParams,
        body: DeviceBody,
        response: { 200: Device, ...errorResponses }
      }
    }, async (request) => {
      const { platform, push_token: pushToken } = request.body
      if (platform === 'ios' && !apnsToken.test(pushToken)) {
        throw new ThreadlineError('bad_request', 'body/push_token: an APNs device token is hex')
      }
      return await registerDevice(store, request.identity.userId, request.params.device_id, platform, pushToken)
    })

    app.delete('/devices/:device_id', {
      schema: {
        tags,
        summary: 'Forget this device\'s push token (at sign-out)',
        params: DeviceParams,
        response: { 204: NoContent, ...errorResponses }
      }
    }, async (request, reply) => {
      if (!await unregisterDevice(store, request.identity.userId, request.params.device_id)) {
        throw new ThreadlineError('not_found', `you have no device ${request.params.device_id}`)
      }
      return reply.code(204).send(null)
    })
  }
}
