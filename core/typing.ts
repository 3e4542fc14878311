// Typing indicators (DESIGN.md §3 conv/<c>/typing, §6 POST …/:id/typing): a member's
// "typing" / "stopped" forwarded to the conversation's typing subscribers, stamped with
// their user id, throttled, never stored. plugins/typing provides the service; its MQTT
// hook and REST route both go through it.
import { serviceKey } from './services.js'

/** forwarded: published on conv/<c>/typing; throttled: dropped by the rate rule; shed: dropped because too many publishes are in flight (a hung Redis) */
export type TypingOutcome = 'forwarded' | 'throttled' | 'shed'

export interface TypingService {
  /** A member's state in a conversation; the caller has checked the membership. */
  signal(userId: string, convId: string, typing: boolean): TypingOutcome
}

export const TYPING_SERVICE = serviceKey<TypingService>('typing')
