// Every wait of the CLI ends: a server that never answers turns into a clear error after
// --timeout rather than a hung script.

/** Settles like `promise`, or rejects with `onTimeout()` after `ms`. */
export function within<T> (promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Resolves on the first of the signals (Ctrl-C, a service manager's stop). */
export function interrupted (signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): Promise<NodeJS.Signals> {
  return new Promise(resolve => {
    const on = (sig: NodeJS.Signals): void => {
      for (const s of signals) process.off(s, on)
      resolve(sig)
    }
    for (const s of signals) process.on(s, on)
  })
}
