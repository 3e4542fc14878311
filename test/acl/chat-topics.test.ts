// core/topics.ts chatTopicOf: every hook asks it of every packet, and the ACL of every
// delivery (Aedes hands each subscriber its own copy of a packet): the answer is kept on
// the packet and the last topic's answer is reused. Either way it must be parseChatTopic's.
import t from 'tap'
import { chatTopicOf, parseChatTopic } from '../../core/topics.js'

const conv = '5b0c1f8e-2d7a-4c3e-9f10-0a1b2c3d4e5f'

t.test('copies of one packet, other topics in between, and topics that are not the design\'s', async (t) => {
  const topics = ['user/ana/inbox', 'user/ana/inbox', 'user/ben/inbox', `conv/${conv}/events`, 'news/today', 'news/today', 'user/ana/inbox', `conv/${conv}/send`, 'conv/not-a-uuid/events', 'presence/ana']
  for (const topic of topics) {
    const packet = { topic }
    t.same(chatTopicOf(packet), parseChatTopic(topic), topic)
    t.same(chatTopicOf(packet), parseChatTopic(topic), `${topic}, asked again of the same packet`)
  }
})
