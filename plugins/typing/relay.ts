// The typing service (core/typing.ts): a member's signal, throttled, published by the
// broker as {"user_id","typing"} on conv/<c>/typing at QoS 0. Nothing is stored and
// nothing waits: the publish is fire-and-forget. Publishes still in flight are capped,
// so a hung Redis (where a publish only gives up after its bound) sheds typing signals
// instead of piling them up.
import type { PluginContext } from '../../broker/plugin.js'
import type { TypingOutcome, TypingService } from '../../core/typing.js'
import { typingTopic } from '../../core/topics.js'
import type { TypingSignal } from '../../schemas/index.js'
import { TypingThrottle } from './throttle.js'

export const MAX_IN_FLIGHT = 1024

export class TypingRelay implements TypingService {
  readonly #ctx: Pick<PluginContext, 'publish' | 'log'>
  readonly #throttle: TypingThrottle
  #inFlight = 0

  constructor (ctx: Pick<PluginContext, 'publish' | 'log'>, throttle: TypingThrottle) {
    this.#ctx = ctx
    this.#throttle = throttle
  }

  signal (userId: string, convId: string, typing: boolean): TypingOutcome {
    if (this.#inFlight >= MAX_IN_FLIGHT) return 'shed'
    if (!this.#throttle.pass(userId, convId, typing)) return 'throttled'
    const signal: TypingSignal = { user_id: userId, typing }
    this.#inFlight++
    this.#ctx.publish(typingTopic(convId), JSON.stringify(signal), { qos: 0 })
      .catch((err: unknown) => this.#ctx.log.debug({ err, conv_id: convId }, 'typing signal not published'))
      .finally(() => { this.#inFlight-- })
    return 'forwarded'
  }
}
