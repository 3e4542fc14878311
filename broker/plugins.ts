// Every plugin of a node, in dependency order: the one line a new plugin adds.
import type { ThreadlinePlugin } from './plugin.js'
import { limitsPlugin } from '../plugins/limits/index.js'
import { authPlugin } from '../plugins/auth/index.js'
import { aclPlugin } from '../plugins/acl/index.js'
import { messagesPlugin } from '../plugins/messages/index.js'
import { typingPlugin } from '../plugins/typing/index.js'
import { pushPlugin } from '../plugins/push/index.js'
import { presencePlugin } from '../plugins/presence/index.js'
import { receiptsPlugin } from '../plugins/receipts/index.js'
import { longPollPlugin } from '../plugins/longpoll/index.js'
import { metricsPlugin } from '../plugins/metrics/index.js'

export const PLUGINS: ReadonlyArray<ThreadlinePlugin<unknown>> = [
  limitsPlugin,
  authPlugin,
  aclPlugin,
  messagesPlugin,
  typingPlugin,
  receiptsPlugin,
  presencePlugin,
  pushPlugin,
  longPollPlugin,
  metricsPlugin
]
