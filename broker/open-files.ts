// How many files (sockets included) this process may hold open, and how THREADLINE_MAX_
// CONNECTIONS is fitted into it: a node that accepted connections past that limit would
// fail at random (accept, a PostgreSQL reconnect, a log file) instead of answering
// CONNACK 3, so the budget is checked once, at startup.
import { readFileSync } from 'node:fs'

/**
 * Sockets allowed on the MQTT and HTTP ports together beyond THREADLINE_MAX_CONNECTIONS:
 * clients still before their CONNECT (refused or not), REST requests, long polls and
 * WebSocket upgrades. Past max + this, a new socket is closed as soon as it is accepted.
 */
export const SOCKET_HEADROOM = 512

/**
 * Files a node holds besides its clients' sockets: the store pool (10), Redis (a handful),
 * PGlite's files, the listeners, stdio and Node's own (epoll, eventfd, DNS).
 */
export const RESERVED_FILES = 256

/** Open files a node with `maxConnections` may need at most. */
export const filesNeeded = (maxConnections: number): number => maxConnections + SOCKET_HEADROOM + RESERVED_FILES

/** The largest THREADLINE_MAX_CONNECTIONS that fits `openFiles`. */
export const connectionsThatFit = (openFiles: number): number => openFiles - SOCKET_HEADROOM - RESERVED_FILES

/**
 * The soft RLIMIT_NOFILE (`ulimit -n`; Node raises it to the hard limit at startup), or
 * null when it can't be read (not Linux) or is unlimited: then nothing is checked.
 */
export function openFilesLimit (): number | null {
  let text: string
  try {
    text = readFileSync('/proc/self/limits', 'utf8')
  } catch {
    return null
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text)
  return m === null || m[1] === 'unlimited' ? null : Number(m[1])
}

/**
 * Linux's cap on every listen backlog (net.core.somaxconn), or null when it can't be read
 * (not Linux): the kernel silently shortens a longer backlog to it.
 */
export function listenBacklogCap (): number | null {
  try {
    const n = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim())
    return Number.isInteger(n) && n > 0 ? n : null
  } catch {
    return null
  }
}
