// What the bench driver (run.ts) and its load workers (load-worker.ts) say to each other
// over the child_process IPC channel. Times are microseconds of CLOCK_MONOTONIC
// (process.hrtime), which every process on the machine shares: a send stamped in one
// worker can be timed at its delivery in another.

export type Target = 'threadline' | 'raw-aedes'

/** One MQTT connection a worker opens: `<user>:<device>` with a token (ignored by raw Aedes). */
export interface ClientSpec {
  user: string
  token: string
  /** filters subscribed with QoS 1 before the worker reports ready */
  subscribe: string[]
  /** indices of the senders whose every send this client must receive (its echo included) */
  expectFrom: number[]
  /** receives over HTTP long-poll (longpoll-worker.ts) instead of MQTT; `subscribe` is then empty */
  via?: 'longpoll'
}

/** A client that also sends: everything it publishes goes to `topic`. */
export interface SenderSpec {
  /** global sender index: part of every client_msg_id, the key of the loss bitmaps */
  index: number
  user: string
  convId: string
  topic: string
}

/**
 * The signals scenario (`--scenario signals`): what members do besides receiving. Every
 * member but the sender answers each event with delivered + read receipts; some members
 * type; one member also watches conv/<c>/receipts so summaries can be counted.
 */
/**
 * What a member answers each event with, on conv/<c>/read at QoS 0: `both`, delivered then
 * read (an app that acknowledges each message as it shows it); `read`, a read alone (what
 * the SDK sends for an open conversation: a read covers its delivered receipt, which it
 * then never sends).
 */
export type ReceiptPattern = 'both' | 'read'

export interface SignalsSpec {
  /** the receipts for every event received; null: none */
  receipts: ReceiptPattern | null
  /** users that publish {"typing":true} on conv/<c>/typing every typingEveryMs while the phase runs */
  typists: string[]
  typingEveryMs: number
  /** the user whose client also subscribes to conv/<c>/receipts (null: nobody) */
  watcher: string | null
  /** the conversation, for the watcher's and the typists' topics */
  convId: string
}

/** What a worker counted of the signals during one phase (whole phase, not only the window). */
export interface SignalsResult {
  receiptsSent: number
  typingSent: number
  /** `receipts` envelopes on the members' inboxes with others' markers (what senders get) */
  inboxSummaries: number
  /** `receipts` envelopes on the members' inboxes with nothing but the receiver's own marker */
  ownMarkers: number
  /** `receipts` envelopes that arrived on conv/<c>/receipts (at the watcher) */
  convSummaries: number
}

export interface SetupCommand {
  cmd: 'setup'
  target: Target
  url: string
  clients: ClientSpec[]
  senders: SenderSpec[]
  /** sender index → user, for every sender of the scenario (some live in other workers) */
  senderUsers: Record<string, string>
  /** bytes of filler in each text, so a send looks like a short chat message */
  padding: number
  signals?: SignalsSpec
  /** the long-poll worker: `url` is the node's HTTP base; polls ask to be held this long */
  longpoll?: { timeoutS: number }
}

/**
 * The long-poll worker's steps before any phase, one at a time so the driver can read the
 * server's memory between them: `open` a queue per client (its keep-alive connection
 * stays open), then `hold` a poll on each, polling on from then until `close`.
 */
export type LongPollStep = 'open' | 'hold'

export type LoadShape =
  /** closed loop: each sender keeps `window` un-PUBACKed sends in flight */
  | { kind: 'window', window: number }
  /** open loop: sends scheduled by time at `ratePerS` for this worker, whatever the acks do */
  | { kind: 'rate', ratePerS: number }

export interface RunCommand {
  cmd: 'run'
  /** tags client_msg_ids so a late delivery of an earlier phase is never counted here */
  phase: number
  shape: LoadShape
  /** the measured window [markAt, stopAt): warm-up before it, nothing sent after it */
  startAt: number
  markAt: number
  stopAt: number
  /** hard cap on sends by this worker in this phase (every loop bounded in count and time) */
  maxSends: number
  /** after stopAt: wait for outstanding PUBACKs, then for every acked send to arrive, at most this long */
  drainMs: number
}

/**
 * Sent once every worker has reported its PUBACKs: how many sends of each sender were
 * acknowledged, so each worker knows how many deliveries its clients still wait for.
 */
export interface ExpectCommand {
  cmd: 'expect'
  phase: number
  acked: Record<string, number>
}

/**
 * `--scenario connections`: open these idle sessions (clean=false, `<user>:<device>`,
 * subscribed to `user/<user>/inbox` at QoS 1), at most `concurrency` connecting at once,
 * and keep them open until `close`.
 */
export interface SessionsCommand {
  cmd: 'sessions'
  url: string
  sessions: Array<{ user: string, device: string, token: string }>
  concurrency: number
  keepaliveS: number
}

export type DriverMessage = SetupCommand | RunCommand | ExpectCommand | SessionsCommand | { cmd: 'longpoll', step: LongPollStep } | { cmd: 'close' }

/** What the long-poll worker counted of its polls inside [markAt, stopAt). */
export interface PollCounts {
  /** 200 answers that arrived */
  answers: number
  /** of those, answers with no event (the hold timed out) */
  empty: number
  /** events in those answers (every envelope, not only the bench's sends) */
  events: number
  /** polls that failed (not 200, or the connection broke) */
  failed: number
}

export interface PhaseResult {
  worker: number
  /** base64 of hdr-histogram-js compressed histograms, µs */
  latencyFromIntended: string
  latencyFromActual: string
  /** how late the open-loop scheduler issued sends (0 in window mode), µs */
  schedulerLag: string
  sent: number
  acked: number
  /** PUBACKs and deliveries to members other than the sender, inside [markAt, stopAt) */
  ackedInWindow: number
  deliveredInWindow: number
  /** all deliveries to non-senders / back to the sender (its echo), whole phase */
  delivered: number
  echoed: number
  duplicates: number
  orderViolations: number
  /** seq gaps seen per conversation at a member (Threadline only) */
  seqGaps: number
  /** error envelopes (Threadline `t: "error"`) and publish failures */
  errors: number
  errorSamples: string[]
  /** messages that belong to no sender of this phase */
  stray: number
  /** sender index → bitmap (base64) of message numbers PUBACKed */
  ackedBits: Record<string, string>
  /** `<user>\u0000<sender index>` → bitmap of message numbers received */
  receivedBits: Record<string, string>
  drained: boolean
  signals?: SignalsResult
  /** the long-poll worker's result: its deliveries came in poll answers */
  transport?: 'longpoll'
  polls?: PollCounts
}

export type WorkerMessage =
  | { type: 'ready', worker: number, connectMs: number }
  /** a long-poll step is done: every queue opened, or every first poll written to its socket */
  | { type: 'longpoll', worker: number, step: LongPollStep, ms: number }
  /** sending is over and nothing is in flight (or the drain deadline passed) */
  | { type: 'acked', worker: number, acked: Record<string, number> }
  | { type: 'result', result: PhaseResult }
  | { type: 'fatal', worker: number, message: string }
  | { type: 'sessions', worker: number, result: SessionsResult }

/** What a connections worker did with one SessionsCommand. */
export interface SessionsResult {
  /** sessions that reached SUBACK */
  opened: number
  failed: number
  errorSamples: string[]
  /** CLOCK_MONOTONIC µs: the first CONNECT started, the last SUBACK arrived */
  firstAt: number
  lastAt: number
  /** base64 of an hdr-histogram-js compressed histogram, µs from the TCP connect to the SUBACK */
  connectToSuback: string
  /** sessions of this worker (all commands so far) whose connection closed after their SUBACK */
  dropped: number
}

/** Starts the line bench/heap-probe.ts prints in the server's output on SIGUSR2. */
export const HEAP_MARKER = 'BENCH_HEAP '

/** CLOCK_MONOTONIC in µs, shared by every process on the machine. */
export function nowUs (): number {
  const [s, ns] = process.hrtime()
  return s * 1e6 + ns / 1e3
}

/** `<phase>.<sender>.<n>`: phase and sender index, then the sender's message number. */
export function clientMsgId (phase: number, sender: number, n: number): string {
  return `${phase}.${sender}.${n}`
}

export function parseClientMsgId (id: string): { phase: number, sender: number, n: number } | null {
  const a = id.indexOf('.')
  const b = id.indexOf('.', a + 1)
  if (a < 0 || b < 0) return null
  const phase = Number(id.slice(0, a))
  const sender = Number(id.slice(a + 1, b))
  const n = Number(id.slice(b + 1))
  if (!Number.isInteger(phase) || !Number.isInteger(sender) || !Number.isInteger(n)) return null
  return { phase, sender, n }
}
