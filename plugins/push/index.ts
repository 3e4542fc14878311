// Push notifications for members who are not there (DESIGN.md §4): APNs and FCM, the
// device-token routes, and the counters the metrics endpoint reads (core/push/service.ts).
// Whether a user has a device connected is the presence service's answer
// (core/presence/service.ts); until a plugin provides it, nobody counts as connected.
import { definePlugin } from '../../broker/plugin.js'
import { PRESENCE_SERVICE } from '../../core/presence/service.js'
import { PUSH_SERVICE, type PushCounters, type PushProviderName } from '../../core/push/service.js'
import { apnsProvider } from './apns.js'
import { pushConfig, type PushOptions } from './config.js'
import { pruneToken } from './devices.js'
import { dispatch, intake, type DispatchDeps } from './dispatch.js'
import { fcmProvider } from './fcm.js'
import type { Provider } from './provider.js'
import { DeliveryQueue } from './queue.js'
import { deviceRoutes } from './routes.js'
import { PushWindow } from './window.js'

const PROVIDERS: readonly PushProviderName[] = ['apns', 'fcm']
/** how long shutdown waits for a provider's connections to close */
const CLOSE_DEADLINE_MS = 2000
const NONE: PushCounters = Object.freeze({ sent: 0, coalesced: 0, failed: 0, retried: 0, pruned: 0 })

interface Running {
  readonly deps: DispatchDeps
  readonly window: PushWindow
}

// what setup starts and the hooks use, per node (one process may run several in tests)
const running = new WeakMap<object, Running>()

function withDeadline (work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<void>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`still closing after ${ms} ms`)), ms)
  })
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
}

function providersOf (options: PushOptions): Provider[] {
  const providers: Provider[] = []
  if (options.apns !== null) providers.push(apnsProvider(options.apns, options.timeoutMs))
  if (options.fcm !== null) providers.push(fcmProvider(options.fcm))
  return providers
}

export const pushPlugin = definePlugin<PushOptions>({
  name: 'push',
  dependencies: ['auth'],
  config: pushConfig,
  async setup (ctx, options) {
    const log = ctx.log.child({ part: 'push' })
    const providers = providersOf(options)
    const queues = new Map(providers.map(p => [p.name, new DeliveryQueue(p, options, (d) => pruneToken(ctx.store, d), log)]))
    ctx.services.provide(PUSH_SERVICE, {
      providers: [...queues.keys()],
      counters: () => Object.fromEntries(PROVIDERS.map(name => [name, { ...(queues.get(name)?.counters ?? NONE) }])) as Record<PushProviderName, PushCounters>,
      queued: () => Object.fromEntries(PROVIDERS.map(name => [name, queues.get(name)?.size ?? 0])) as Record<PushProviderName, number>
    })
    if (providers.length === 0) {
      log.info('push is off: neither APNs (THREADLINE_APNS_*) nor FCM (THREADLINE_FCM_CREDENTIALS) is configured; device tokens are still stored')
      return
    }
    log.info({ providers: [...queues.keys()], windowMs: options.windowMs }, 'push is on')
    // looked up when needed: the plugin that provides it may be set up after this one
    const deps: DispatchDeps = { store: ctx.store, log, queues, presence: () => ctx.services.find(PRESENCE_SERVICE) }
    const window = new PushWindow(options.windowMs, (users) => dispatch(deps, users), log)
    running.set(ctx, { deps, window })
    return async () => {
      running.delete(ctx)
      window.stop()
      for (const queue of queues.values()) queue.close()
      // a provider that never answers would keep its connections (and this shutdown) open
      await Promise.all(providers.map(p => withDeadline(p.close(), CLOSE_DEADLINE_MS).catch((err: unknown) => log.warn({ err, provider: p.name }, 'push provider did not close cleanly'))))
    }
  },
  hooks (ctx) {
    const push = running.get(ctx)
    if (push === undefined) return {}
    return { eventsCommitted: (events) => intake(push.deps, push.window, events) }
  },
  routes: (ctx) => deviceRoutes(ctx.store)
})
