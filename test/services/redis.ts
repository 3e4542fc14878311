// A throwaway Redis for one test run, plus the raw-socket PING used to check it is up.
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { redisBin } from './debian.js'
import { type Defer, freePort, sleep } from './util.js'

/** true when a Redis at host:port answers PING with +PONG (not e.g. -LOADING). */
export function ping (host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise(resolve => {
    const sock = net.connect({ host, port })
    let reply = ''
    const done = (ok: boolean) => {
      clearTimeout(timer)
      sock.destroy()
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    sock.on('connect', () => sock.write('PING\r\n'))
    sock.on('data', d => {
      reply += d.toString()
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
    sock.on('error', () => done(false))
    sock.on('close', () => done(false))
  })
}

/** Starts redis-server as our child and returns its REDIS_URL once it answers PING. */
export async function startRedis (defer: Defer): Promise<string> {
  const bin = redisBin()
  if (!bin) throw new Error('redis-server not found')
  // --dir: anything Redis might write stays in a dir we delete (nothing should be, with --save '').
  const dir = await mkdtemp(path.join(os.tmpdir(), 'threadline-redis-'))
  defer(() => rm(dir, { recursive: true, force: true }))

  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const child = spawn(bin, [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--dir', dir,
      // detached: its own process group, so a terminal Ctrl-C doesn't kill Redis under
      // tests that are still shutting down; we stop it ourselves after tap exits.
    ], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    // Keep draining its log so a chatty Redis can never block on a full pipe.
    let output = ''
    const collect = (d: Buffer) => { output = (output + d.toString()).slice(-4000) }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    let exited = false
    const exit = new Promise<void>(resolve => child.once('exit', () => { exited = true; resolve() }))
    child.once('error', err => { exited = true; output += String(err) })

    const stop = async () => {
      if (exited) return
      child.kill('SIGTERM')
      const forced = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exit
      clearTimeout(forced)
    }
    const deadline = Date.now() + 10_000
    // `exited` is set by the child's exit listener while this loop awaits
    // eslint-disable-next-line no-unmodified-loop-condition
    while (!exited && Date.now() < deadline) {
      if (await ping('127.0.0.1', port)) {
        defer(stop)
        return `redis://127.0.0.1:${port}`
      }
      await sleep(50)
    }
    await stop()
    // Most likely the port was taken between freePort() and bind: try another.
    if (attempt === 3) throw new Error(`redis-server did not start:\n${output}`)
  }
}
