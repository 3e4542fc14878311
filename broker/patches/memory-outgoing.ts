// Aedes' default in-memory persistence (aedes-persistence 11, MemoryPersistence) keeps each
// client's offline queue in a private `#outgoing` Map: nothing outside it can trim a queue
// or drop one, so queues grow without bound and outlive their sessions. This takes over
// the five `outgoing*` methods of that persistence instance, with the semantics of
// aedes-persistence/asyncPersistence.js, over queues we own. If an upgrade adds another
// method that reads or writes `#outgoing`, it would bypass these queues:
// test/broker/patches/memory-outgoing.test.ts fails then (it also runs the library's own
// persistence suite over these queues).
import { createRequire } from 'node:module'
import { Readable } from 'node:stream'

/** The methods taken over; the test compares them with the library's own. */
export const OUTGOING_METHODS = ['outgoingEnqueue', 'outgoingEnqueueCombi', 'outgoingUpdate', 'outgoingClearMessageId', 'outgoingStream'] as const

export interface QueuedPacket {
  messageId?: number
  brokerId?: string
  brokerCounter?: number
  [field: string]: unknown
}

type Packet = new (original: object) => QueuedPacket
// The packet class Aedes itself uses, resolved from Aedes' own dependencies: copying a
// packet per queue keeps one subscriber's messageId off the others' (and resets it)
const require = createRequire(import.meta.url)
const Packet = createRequire(require.resolve('aedes'))('aedes-packet') as Packet

type Outgoing = Record<typeof OUTGOING_METHODS[number], (...args: never[]) => unknown>

/** Offline QoS 1/2 queues of an in-memory broker, oldest first. */
export class MemoryQueues {
  readonly #queues = new Map<string, QueuedPacket[]>()

  /** `trim` runs after each enqueue and before each replay: it may drop from the front */
  constructor (private readonly trim: (clientId: string, queue: QueuedPacket[], replay: boolean) => void) {}

  /** Replaces the outgoing methods of aedes' memory persistence instance with these queues. */
  install (persistence: object): void {
    const own: Outgoing = {
      outgoingEnqueue: async (sub: { clientId: string }, packet: object) => { this.#enqueue(sub.clientId, packet) },
      outgoingEnqueueCombi: async (subs: Array<{ clientId: string }>, packet: object) => {
        for (const sub of subs) this.#enqueue(sub.clientId, packet)
      },
      outgoingUpdate: async (client: { id: string }, packet: QueuedPacket) => { this.#update(client.id, packet) },
      outgoingClearMessageId: async (client: { id: string }, packet: QueuedPacket) => this.#clear(client.id, packet),
      outgoingStream: (client: { id: string }) => {
        const queue = this.#queues.get(client.id) ?? []
        this.trim(client.id, queue, true)
        return Readable.from([...queue]) // a copy: acks during the replay change the queue
      }
    }
    Object.assign(persistence, own)
  }

  length (clientId: string): number {
    return this.#queues.get(clientId)?.length ?? 0
  }

  drop (clientId: string): void {
    this.#queues.delete(clientId)
  }

  #enqueue (clientId: string, packet: object): void {
    let queue = this.#queues.get(clientId)
    if (queue === undefined) this.#queues.set(clientId, queue = [])
    queue.push(new Packet(packet))
    this.trim(clientId, queue, false)
  }

  #update (clientId: string, packet: QueuedPacket): void {
    const queue = this.#queues.get(clientId) ?? []
    for (let i = 0; i < queue.length; i++) {
      const queued = queue[i] as QueuedPacket
      if (queued.brokerId === packet.brokerId) {
        if (queued.brokerCounter === packet.brokerCounter) {
          queued.messageId = packet.messageId
          return
        }
        // messageIds wrap at 65535: only brokerId + brokerCounter identify a packet
      } else if (queued.messageId === packet.messageId) {
        queue[i] = packet
        return
      }
    }
    throw new Error('no such packet')
  }

  #clear (clientId: string, packet: QueuedPacket): QueuedPacket | undefined {
    const queue = this.#queues.get(clientId)
    if (queue === undefined) return undefined
    const i = queue.findIndex(queued => queued.messageId === packet.messageId)
    if (i === -1) return undefined
    const [cleared] = queue.splice(i, 1)
    // the library keeps empty queues forever; a queue per client ever seen is a leak
    if (queue.length === 0) this.#queues.delete(clientId)
    return cleared
  }
}
