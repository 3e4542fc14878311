// The conformance bar: with THREADLINE_OPEN_TOPICS=anonymous, off-the-shelf
// MQTT 3.1.1 suites pass against Threadline as they pass against a plain Aedes (the
// baseline in expected-pass.txt): the chat plugins must not break QoS 0/1/2, retained
// messages, wills, keepalive or redelivery on reconnect. Both suites come from Debian's
// packages (see README.md here); the scripts fetch them when missing.
import { spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startNode } from '../helpers/node.js'

// the Mosquitto suite alone runs ~2 min, longer on a loaded 2-core machine
t.setTimeout(15 * 60_000)

const here = path.dirname(fileURLToPath(import.meta.url))

function run (script: string, port: number): Promise<{ code: number | null, output: string }> {
  return new Promise((resolve) => {
    const child = spawn(path.join(here, script), ['127.0.0.1', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d: Buffer) => { output += d.toString() })
    child.stderr.on('data', (d: Buffer) => { output += d.toString() })
    child.on('exit', (code) => resolve({ code, output }))
  })
}

const node = await startNode(t, { store: 'pglite', env: { THREADLINE_OPEN_TOPICS: 'anonymous' } })

for (const [script, summary] of [['run-suite.sh', /interop: (\d+) passed, 0 failed/], ['run-paho-go-fvt.sh', /paho-go-fvt: (\d+) passed, 0 failed/]] as const) {
  t.test(`${script}: every case a plain Aedes passes also passes against Threadline`, async (t) => {
    const { code, output } = await run(script, node.mqttPort)
    const lines = output.trim().split('\n')
    if (code !== 0) t.comment(lines.filter(l => /FAIL|REGRESSION|error|\|/.test(l)).slice(0, 60).join('\n'))
    t.equal(code, 0, `${script} exits 0`)
    t.match(lines.at(-1) ?? '', summary, lines.at(-1) ?? 'no output')
  })
}
