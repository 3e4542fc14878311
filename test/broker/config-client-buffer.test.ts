// THREADLINE_CLIENT_BUFFER_BYTES (broker/config.ts): in a file of its own so that the
// hardening branches don't all edit test/broker/config.test.ts.
import t from 'tap'
import { ConfigError, loadConfig } from '../../broker/config.js'

t.test('the client buffer bound defaults to 1 MiB, or one packet at the size limit when that is more', async (t) => {
  t.equal(loadConfig({}).clientBufferBytes, 1048576)
  t.equal(loadConfig({ THREADLINE_CLIENT_BUFFER_BYTES: '66560' }).clientBufferBytes, 66560, 'THREADLINE_MAX_PAYLOAD_BYTES + 1024 is the least accepted')
  t.equal(loadConfig({ THREADLINE_MAX_PAYLOAD_BYTES: String(4 * 1024 * 1024) }).clientBufferBytes, 4 * 1024 * 1024 + 1024)
})

t.test('a client buffer bound that cannot hold one packet at the size limit is refused, naming both variables', async (t) => {
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ THREADLINE_CLIENT_BUFFER_BYTES: '66559' }, /must be at least THREADLINE_MAX_PAYLOAD_BYTES \+ 1024 = 66560 .*got 66559/],
    [{ THREADLINE_MAX_PAYLOAD_BYTES: '2097152', THREADLINE_CLIENT_BUFFER_BYTES: '1048576' }, /= 2098176/],
    [{ THREADLINE_CLIENT_BUFFER_BYTES: 'lots' }, /whole number/],
    [{ THREADLINE_CLIENT_BUFFER_BYTES: '0' }, /between/]
  ]
  for (const [env, why] of bad) {
    let err: unknown = null
    try {
      loadConfig(env)
    } catch (e) {
      err = e
    }
    t.ok(err instanceof ConfigError, `${JSON.stringify(env)} is refused`)
    t.equal((err as ConfigError).variable, 'THREADLINE_CLIENT_BUFFER_BYTES')
    t.match((err as Error).message, why, (err as Error).message)
  }
})
