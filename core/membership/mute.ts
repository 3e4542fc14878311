// A member's own settings in one conversation (DESIGN.md §6 PATCH …/members/me); for
// now the mute alone.
import { ThreadlineError, type MemberSettings } from '../../schemas/index.js'
import { iso } from '../iso.js'
import type { Queryable } from '../store.js'
import { setMutedUntil } from './repo.js'

/** `mutedUntil` null unmutes. */
export async function setMute (q: Queryable, convId: string, userId: string, mutedUntil: string | null): Promise<MemberSettings> {
  const stored = await setMutedUntil(q, convId, userId, mutedUntil)
  if (stored === undefined) throw new ThreadlineError('not_member', `you are not a member of conversation ${convId}`)
  return { conv_id: convId, user_id: userId, muted_until: stored === null ? null : iso(stored) }
}
