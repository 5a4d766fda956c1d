import type { BackendErrorReason } from '../reasons.js'
import type { WatchLogger } from './backend.js'
import { reasonOf } from './read-bounded.js'

/** A watch that could not be set up is tried again after this, doubling on each failure up to the cap. */
const RETRY_MIN_MS = 100
const RETRY_MAX_MS = 30_000
/** The directory vanished between looking for it and watching it: routine, retried, neither logged nor counted. */
const ROUTINE_CODES = new Set(['ENOENT', 'ENOTDIR'])

export interface WatchFailures {
  /** `fs.watch` threw. */
  failed(err: unknown): void
  /** The watch is in place: ends a failing streak, if any. */
  succeeded(): void
  /** How long to wait before the next attempt. */
  retryDelayMs(): number
}

/**
 * The failing streak of a file watch the system refuses (`ENOSPC`: the inotify watch limit used
 * up; `EACCES`): each attempt counted through `onFailure` (as the Kubernetes API's refused
 * watch is: reads may all succeed, and changes wait for the interval read), one `watch_failed`
 * line per streak, a `watch_resumed` line when it ends, and retries that back off, so a limit
 * used up for hours costs a syscall every `RETRY_MAX_MS`, not ten a second.
 */
export function watchFailures(
  location: string,
  logger: WatchLogger | undefined,
  onFailure: ((reason: BackendErrorReason) => void) | undefined,
  elapsedMs: () => number,
): WatchFailures {
  let failures = 0
  let since = 0
  return {
    failed(err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== undefined && ROUTINE_CODES.has(code)) return
      const reason = reasonOf(err)
      if (failures++ === 0) {
        since = elapsedMs()
        logger?.warn(
          { event: 'watch_failed', reason, code: code ?? null, location, error: String((err as Error).message ?? err).slice(0, 300) },
          'cannot watch the keyset file; changes wait for the interval read; retrying, the last good keyset stays in force',
        )
      }
      onFailure?.(reason)
    },
    succeeded() {
      if (failures === 0) return
      logger?.info(
        { event: 'watch_resumed', location, failed_attempts: failures, failing_for_seconds: Math.round((elapsedMs() - since) / 1000) },
        'watching the keyset file again',
      )
      failures = 0
    },
    retryDelayMs: () => Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(Math.max(failures - 1, 0), 16)),
  }
}
