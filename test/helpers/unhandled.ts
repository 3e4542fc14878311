// Records the unhandled rejections of the test process while a test runs. Listening also
// keeps Node from ending the process on one, so the test can say what it was.
interface Teardownable { teardown(fn: () => unknown): void }

export interface UnhandledRejections {
  readonly reasons: unknown[]
  /** resolves once `n` have been seen */
  reached(n: number): Promise<void>
}

export function unhandledRejections (t: Teardownable): UnhandledRejections {
  const reasons: unknown[] = []
  const waiters: Array<() => void> = []
  const listener = (reason: unknown): void => {
    reasons.push(reason)
    for (const wake of waiters.splice(0)) wake()
  }
  process.on('unhandledRejection', listener)
  t.teardown(() => { process.off('unhandledRejection', listener) })
  const reached = async (n: number): Promise<void> => {
    while (reasons.length < n) await new Promise<void>(resolve => waiters.push(resolve))
  }
  return { reasons, reached }
}
