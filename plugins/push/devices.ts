// devices rows (DESIGN.md §5): one push token per (user, device). A token is unique
// across users (migration 3): registering it again moves it to whoever registered it last.
import type { Device, Platform } from '../../schemas/index.js'
import { iso } from '../../core/iso.js'
import type { Queryable, Store } from '../../core/store.js'

export interface DeviceRow {
  user_id: string
  device_id: string
  platform: Platform
  push_token: string
}

const UNIQUE_VIOLATION = '23505'

/** Stores the device's token; the same token held by any other device (of anyone) is released first. */
export async function registerDevice (store: Store, userId: string, deviceId: string, platform: Platform, pushToken: string): Promise<Device> {
  const attempt = (): Promise<Device> => store.transaction(async (tx) => {
    await tx.query('DELETE FROM devices WHERE push_token = $1 AND NOT (user_id = $2 AND device_id = $3)', [pushToken, userId, deviceId])
    const rows = await tx.query<{ device_id: string, platform: Platform, push_token: string, updated_at: Date | string }>(
      `INSERT INTO devices (user_id, device_id, platform, push_token, updated_at) VALUES ($1, $2, $3, $4, now())
       ON CONFLICT (user_id, device_id) DO UPDATE SET platform = EXCLUDED.platform, push_token = EXCLUDED.push_token, updated_at = now()
       RETURNING device_id, platform, push_token, updated_at`, [userId, deviceId, platform, pushToken])
    const row = rows[0] as NonNullable<typeof rows[0]>
    return { device_id: row.device_id, platform: row.platform, push_token: row.push_token, updated_at: iso(row.updated_at) }
  })
  try {
    return await attempt()
  } catch (err) {
    // two users registering the same token at once: the loser's insert meets the winner's
    // row; once more, its DELETE sees that row and takes the token over
    if ((err as { code?: unknown }).code !== UNIQUE_VIOLATION) throw err
    return await attempt()
  }
}

/** Answers whether the device was there. */
export async function unregisterDevice (q: Queryable, userId: string, deviceId: string): Promise<boolean> {
  const rows = await q.query('DELETE FROM devices WHERE user_id = $1 AND device_id = $2 RETURNING device_id', [userId, deviceId])
  return rows.length > 0
}

/** The devices with a token of each of `userIds`. */
export async function devicesOf (q: Queryable, userIds: readonly string[]): Promise<DeviceRow[]> {
  if (userIds.length === 0) return []
  return await q.query<DeviceRow>(
    `SELECT user_id, device_id, platform, push_token FROM devices
     WHERE user_id = ANY($1::text[]) AND push_token IS NOT NULL ORDER BY user_id, device_id`, [userIds])
}

/** Deletes a token the provider reports gone, unless the device registered another since. */
export async function pruneToken (q: Queryable, device: DeviceRow): Promise<boolean> {
  const rows = await q.query('DELETE FROM devices WHERE user_id = $1 AND device_id = $2 AND push_token = $3 RETURNING device_id',
    [device.user_id, device.device_id, device.push_token])
  return rows.length > 0
}
