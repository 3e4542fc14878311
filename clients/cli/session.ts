// One SDK client per run. Commands that only read or write over REST never connect it;
// the others wait (bounded by --timeout) until it is online. Either way it is closed
// before the process exits, also when the command fails.
import { ThreadlineClient, type ConversationView } from '../sdk/index.js'
import type { CliConfig } from './config.js'
import { CliError } from './errors.js'
import type { Io } from './io.js'
import { within } from './wait.js'

export interface Session {
  readonly client: ThreadlineClient
  readonly config: CliConfig
  readonly io: Io
}

/**
 * - `rest`: REST calls only, never connected;
 * - `once`: connected for one exchange (a send, a receipt), then closed;
 * - `follow`: connected for as long as the command runs (tail, chat).
 */
export type Use = 'rest' | 'once' | 'follow'

/**
 * A device made up for one run that exchanges one thing goes over long-poll under `auto`:
 * its queue is deleted when the client closes, while an MQTT session (the SDK's are
 * persistent) would stay on the server, collecting the user's events, until it expires
 * (THREADLINE_SESSION_EXPIRY_S, 7 days) — a script sending every minute would leave
 * thousands. A device named with --device keeps the transport asked for.
 */
function transportFor (config: CliConfig, use: Use): CliConfig['transport'] {
  return config.transport === 'auto' && config.throwawayDevice && use === 'once' ? 'longpoll' : config.transport
}

export function createClient (config: CliConfig, use: Use): ThreadlineClient {
  return new ThreadlineClient({
    url: config.url,
    token: config.token,
    deviceId: config.deviceId,
    transport: transportFor(config, use),
    ...(config.mqttUrl !== undefined ? { mqttUrl: config.mqttUrl } : {})
  })
}

/**
 * The SDK keeps retrying a server it can't reach (that is what keeps an app's outbox alive);
 * a command line should instead say at once that nothing answers at --url.
 */
async function reachable (config: CliConfig): Promise<void> {
  const res = await fetch(`${config.url}/healthz`, { signal: AbortSignal.timeout(config.timeoutMs) })
  await res.body?.cancel()
}

export async function withClient (config: CliConfig, io: Io, use: Use, run: (session: Session) => Promise<void>): Promise<void> {
  const client = createClient(config, use)
  try {
    if (use !== 'rest') {
      await reachable(config)
      await within(client.connect(), config.timeoutMs, () =>
        new CliError(`could not connect to ${config.url} within ${config.timeoutMs / 1000} s; is the server running, and is --url / THREADLINE_URL right?`))
    }
    await run({ client, config, io })
  } finally {
    await client.close()
  }
}

/** One conversation as the user sees it; the same refusal as the server's when not a member. */
export async function findConversation ({ client }: Session, convId: string): Promise<ConversationView> {
  const view = (await client.conversations()).find(c => c.id === convId)
  // no existence oracle, as on the server: unknown and not joined answer alike
  if (view === undefined) throw new CliError(`not allowed (not_member: you are not a member of conversation ${convId})`)
  return view
}
