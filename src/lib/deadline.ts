/**
 * Deadlines that count only time the event loop was free.
 *
 * A plain `setTimeout(ms)` raced against I/O misjudges a busy process: a turn of the loop runs
 * due timers before it delivers finished I/O, so a loop kept busy by other work (a burst of
 * requests, a loaded machine, a long GC) fires the timer first and calls an answer that
 * arrived in time a `timeout`. That counts a backend error and drops the change it carried.
 * Here the timer looks at the clock at least ten times (each look a turn of the loop, in which
 * finished I/O is delivered) and a look that comes more than one interval late counts as two
 * intervals, not its delay: a hung peer still times out within about `ms` of free time.
 */

/** Stops a deadline from firing; calling it again, or after it fired, does nothing. */
export type CancelDeadline = () => void

/**
 * Calls `onExpire` once `ms` of free event-loop time have passed, unless cancelled first.
 *
 * @example
 * const cancel = startDeadline(5000, () => socket.destroy(new Error('timeout')))
 * socket.once('close', cancel)
 */
export function startDeadline(ms: number, onExpire: () => void): CancelDeadline {
  const interval = Math.max(1, Math.min(100, ms / 10))
  let timer: NodeJS.Timeout | undefined
  let waited = 0
  let lookedAt = performance.now()
  const schedule = (): void => {
    const due = Math.min(interval, ms - waited)
    timer = setTimeout(() => look(due), due)
  }
  const look = (due: number): void => {
    const now = performance.now()
    waited += Math.min(now - lookedAt, 2 * due)
    lookedAt = now
    if (waited >= ms) {
      timer = undefined
      onExpire()
    } else schedule()
  }
  schedule()
  return () => {
    clearTimeout(timer)
    timer = undefined
  }
}

/**
 * `work`, or the error of `onTimeout` once `ms` of free event-loop time have passed (the work
 * itself is abandoned, not stopped).
 *
 * @example
 * const text = await withDeadline(readFile(path), 5000, () => new BackendError('timeout', `reading ${path} took too long`))
 */
export async function withDeadline<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let cancel: CancelDeadline | undefined
  const deadline = new Promise<never>((_, reject) => {
    cancel = startDeadline(ms, () => reject(onTimeout()))
  })
  try {
    return await Promise.race([work, deadline])
  } finally {
    cancel?.()
  }
}
