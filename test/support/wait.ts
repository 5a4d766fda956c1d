import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Polls `probe` until it returns a value that is not `undefined`/`false`, or throws after
 * `timeoutMs` with the last value seen. Bounded waits only: a test never hangs.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  { timeoutMs = 5000, intervalMs = 50, what = 'condition' }: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<Exclude<T, undefined | false>> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      last = await probe()
      if (last !== undefined && last !== false) return last as Exclude<T, undefined | false>
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`)
    }
    await sleep(intervalMs)
  }
}
