// A node with push pointed at the fakes of test/helpers/push-fakes.ts, and the REST calls
// the push tests make (conversations, devices, mutes) as the user would.
import type { Test } from 'tap'
import type { Threadline } from '../../broker/server.js'
import { PLUGINS } from '../../broker/plugins.js'
import { PUSH_SERVICE, type PushService } from '../../core/push/service.js'
import { PRESENCE_SERVICE } from '../../core/presence/service.js'
import { startNode, token, type NodeOptions } from './node.js'
import { waitFor } from './wait.js'
import { pushEnv, type FakeApns, type FakeFcm, type PushCredentials } from './push-fakes.js'

/** the node's plugins (presence among them: who counts as connected) */
export const PUSH_TEST_PLUGINS = PLUGINS

export interface PushNode {
  readonly node: Threadline
  readonly push: PushService
}

export function pushNodeOf (node: Threadline): PushNode {
  return { node, push: node.services.get(PUSH_SERVICE) }
}

/**
 * Resolves once `node`'s presence service counts `user` as connected (or not); the
 * service says so by no event of its own.
 */
export async function untilOnline (node: Threadline, user: string, online = true): Promise<void> {
  const presence = node.services.get(PRESENCE_SERVICE)
  await waitFor(async () => (await presence.isConnected(user)) === online, `${user} ${online ? 'online' : 'offline'} at node ${node.httpPort}`)
}

export async function startPushNode (t: Test, creds: PushCredentials, fakes: { apns: FakeApns | null, fcm: FakeFcm | null }, opts: NodeOptions = {}): Promise<PushNode> {
  const node = await startNode(t, {
    ...opts,
    plugins: PUSH_TEST_PLUGINS,
    env: { THREADLINE_PUSH_RETRY_BASE_MS: '20', ...pushEnv(creds, fakes.apns, fakes.fcm), ...opts.env }
  })
  return pushNodeOf(node)
}

async function call (t: Test, node: Threadline, user: string, method: 'POST' | 'PUT' | 'PATCH', url: string, payload: Record<string, unknown>, status: number): Promise<Record<string, unknown>> {
  const res = await node.app.inject({ method, url, headers: { authorization: `Bearer ${token(node, user)}` }, payload })
  t.equal(res.statusCode, status, `${method} ${url}: ${res.body}`)
  return res.json()
}

export async function createGroup (t: Test, node: Threadline, creator: string, title: string, members: string[]): Promise<string> {
  return (await call(t, node, creator, 'POST', '/v1/conversations', { type: 'group', title, members }, 201)).id as string
}

export async function createDirect (t: Test, node: Threadline, a: string, b: string): Promise<string> {
  return (await call(t, node, a, 'POST', '/v1/conversations', { type: 'direct', members: [b] }, 201)).id as string
}

export async function registerDevice (t: Test, node: Threadline, user: string, deviceId: string, platform: 'ios' | 'android' | 'web', pushToken: string): Promise<void> {
  await call(t, node, user, 'PUT', `/v1/devices/${deviceId}`, { platform, push_token: pushToken }, 200)
}

export async function mute (t: Test, node: Threadline, user: string, convId: string, until: string | null): Promise<void> {
  await call(t, node, user, 'PATCH', `/v1/conversations/${convId}/members/me`, { muted_until: until }, 200)
}

/** An APNs device token of its own (hex) and an FCM registration token of its own. */
export const iosToken = (n: number): string => n.toString(16).padStart(64, '0')
export const fcmToken = (name: string): string => `fcm:${name}-APA91b`
