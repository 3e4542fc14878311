// What the long-poll plugin (plugins/longpoll) tells the rest of the node: its queues and
// held polls, for tests and the metrics plugin (which may not import another plugin).
import { serviceKey } from '../services.js'

export interface LongPollStats {
  /** live queues (with Redis: the cluster's) */
  queues: number
  /** events waiting in them */
  events: number
  /** polls this node holds open now */
  held: number
  /** devices counted as connected through long-poll on this node */
  devices: number
}

export const LONGPOLL_STATS = serviceKey<() => Promise<LongPollStats>>('longpoll.stats')
