// Replaces Aedes' broker.publish, which routes every client packet it has acknowledged;
// applied in broker/server.ts. The delivery-time ACL (authorizeForward) would withhold
// such packets too, so Threadline behaves the same without this patch: it saves the
// routing work and, in a cluster, the Redis round trip. It relies on Aedes 1.2 handing
// each authorized client PUBLISH to broker.publish(packet, client, done) with the client;
// test/broker/patches/drop-raw-chat-packets.test.ts fails if an upgrade changes that.
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
