// Replaces Aedes' broker.publish, which routes every client packet it has acknowledged;
// applied in broker/server.ts. The delivery-time ACL (authorizeForward) would withhold
// such packets too, so no test fails without this patch yet: it saves the routing work
// and, in a cluster, the Redis round trip.
import type { Aedes, PublishPacket } from 'aedes'
import { isChatNamespace } from '../../core/topics.js'

/**
 * Client packets to chat topics are acted on in authorizePublish and acknowledged, but
 * never routed as they are (DESIGN.md §3: "the raw packet of send, read and presence
 * never reaches any subscriber"). Dropping them here also spares a cluster the Redis
 * round trip of a packet nobody may receive.
 */
export function dropRawChatPackets (broker: Aedes): void {
  const publish = broker.publish.bind(broker) as (packet: PublishPacket, client: unknown, done: (err?: Error) => void) => void
  ;(broker as unknown as { publish: typeof publish }).publish = (packet, client, done) => {
    if (typeof client === 'object' && client !== null && isChatNamespace(packet.topic)) return done()
    publish(packet, client, done)
  }
}
