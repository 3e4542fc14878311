// The REST sidecar built over real parts (store, SendService, MembershipCache, tokens)
// for app.inject() tests. `publish` is the one observation point: it records what the
// broker would have published, for asserting fan-out without an MQTT round trip.
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import type { Test } from 'tap'
import { loadConfig, type Config } from '../../broker/config.js'
import { createLogger } from '../../broker/logger.js'
import { MembershipCache } from '../../broker/membership.js'
import type { Store } from '../../broker/store/index.js'
import { createTokenService, type TokenService } from '../../core/tokens.js'
import { SendService } from '../../core/messages/send-service.js'
import { buildApp } from '../../sync-api/app.js'
import type { SyncApiDeps } from '../../sync-api/deps.js'

export const TEST_SECRET = 'sync-api-test-secret-0123456789abcdef'

export interface Published { topic: string, payload: unknown }

export interface TestApi {
  readonly app: FastifyInstance
  readonly deps: SyncApiDeps
  readonly tokens: TokenService
  /** every publish so far, payloads parsed as JSON */
  readonly published: Published[]
  /** `Authorization` header of a fresh 1-hour token for `user` */
  auth(user: string, name?: string): Record<string, string>
  /** app.inject() as `user` (null: without a token) */
  call(user: string | null, opts: InjectOptions): Promise<LightMyRequestResponse>
}

export interface TestApiOptions {
  config?: Partial<Config>
  checks?: SyncApiDeps['checks']
  web?: SyncApiDeps['web']
}

export async function buildTestApi (t: Pick<Test, 'teardown'>, store: Store, opts: TestApiOptions = {}): Promise<TestApi> {
  const log = createLogger(process.env.THREADLINE_LOG_LEVEL ?? 'silent')
  const config: Config = Object.freeze({ ...loadConfig({ THREADLINE_DATA_DIR: '/nonexistent' }), ...opts.config })
  const tokens = createTokenService(TEST_SECRET)
  const published: Published[] = []
  const publish = async (topic: string, payload: Buffer | string): Promise<void> => {
    published.push({ topic, payload: JSON.parse(payload.toString()) })
  }
  const sends = new SendService(store, (topic, payload, done) => { publish(topic, payload).then(() => done(), done) }, log)
  t.teardown(() => sends.drain())
  const membership = new MembershipCache(store, log)
  const deps: SyncApiDeps = { config, log, store, tokens, sends, membership, publish, checks: opts.checks ?? [], web: opts.web }
  const app = await buildApp(deps)
  t.teardown(() => app.close())
  const auth = (user: string, name?: string): Record<string, string> =>
    ({ authorization: `Bearer ${tokens.sign({ sub: user, ...(name !== undefined ? { name } : {}) }, 3600)}` })
  return {
    app,
    deps,
    tokens,
    published,
    auth,
    call: async (user, injectOpts) => await app.inject({
      ...injectOpts,
      headers: { ...(user !== null ? auth(user) : {}), ...injectOpts.headers }
    })
  }
}
