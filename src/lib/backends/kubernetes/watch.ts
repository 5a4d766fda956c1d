import { BackendError } from '../../errors.js'
import type { WatchLogger } from '../backend.js'
import { printable } from '../../logging/sanitize.js'
import type { BackendErrorReason } from '../../reasons.js'
import { ApiTransportError, reasonOfStatus, type KubernetesApi } from './api.js'

export interface SecretWatchOptions {
  api: KubernetesApi
  namespace: string
  /** The one Secret watched (a field selector on `metadata.name`, which is what RBAC `resourceNames` needs for list and watch). */
  name: string
  /** Something about the Secret may have changed: an event, a relist, a broken watch. The keyring re-reads. */
  onChange(): void
  /**
   * A failed attempt (refused list or watch, an ERROR event, a silent or malformed stream) with
   * its bounded reason — not a cut connection, which the read that follows counts if the API is
   * down: counted in `cbc_jwt_backend_errors_total`, since that read may well succeed (a Role
   * without `list` or `watch`) and nothing else would show the watch is down.
   */
  onFailure?(reason: BackendErrorReason): void
  logger: WatchLogger
  /** For log lines: `kubernetes:ns/name#key`. */
  location: string
  /** The credentials in use (the bearer token): redacted from the foreign text a log line quotes. */
  secrets?: () => readonly string[]
  /** Asked of the API server per watch request; it ends the stream after this and the watch resumes. @default 300 */
  timeoutSeconds?: number
  /** Largest event line (and list answer) accepted. */
  maxEventBytes: number
  /** Backoff between failed attempts: doubles from `minMs` to `maxMs`, fully jittered. @default 500, 5000 */
  backoffMinMs?: number
  backoffMaxMs?: number
  random?: () => number
}

export interface SecretWatch {
  /** The resourceVersion the next watch resumes from; undefined before the first list and after a `410 Gone`. */
  resourceVersion(): string | undefined
  /** Whether a watch stream is open now. */
  connected(): boolean
  close(): void
}

interface WatchEvent {
  type?: unknown
  object?: { metadata?: { resourceVersion?: unknown }; code?: unknown; reason?: unknown }
}

/** A watch that ends sooner than this without one event did not really watch. */
const SHORT_WATCH_MS = 1000

/**
 * The longest resourceVersion resumed from, as sent back (URL-encoded): the API server's are
 * short numbers, and any API server takes a request line this long (a far longer one is 431).
 */
const MAX_RESUME_CHARS = 1024

/** A 410 Gone in any form: the resourceVersion is older than the API server's history. */
class Gone extends Error {}

/**
 * List + watch of one Secret, as client-go's reflector does it: list (field selector
 * `metadata.name=NAME`) for a resourceVersion, watch from it with bookmarks, resume from the
 * last resourceVersion seen when the stream ends or breaks, list again on `410 Gone`. Every
 * event, every relist and every failure calls `onChange`, so the keyring reads the Secret
 * (one GET, bounded) and decides: an unchanged resourceVersion costs nothing, a failed read
 * keeps the last good keyset and counts a backend error. Bookmarks only move the resume point.
 */
export function startSecretWatch(opts: SecretWatchOptions): SecretWatch {
  const { api, logger } = opts
  const timeoutSeconds = opts.timeoutSeconds ?? 300
  const minMs = opts.backoffMinMs ?? 500
  // Not client-go's 30 s: a change written once the API is back (a revocation, a compromised
  // key's rotation) must be in force within seconds, and a watch still backing off from an
  // outage sees nothing until its next attempt. At most one list (and one read) per replica
  // every 5 s, jittered, while the API is down.
  const maxMs = opts.backoffMaxMs ?? 5_000
  const random = opts.random ?? Math.random
  const secrets = opts.secrets ?? (() => [])
  const collection = `/api/v1/namespaces/${encodeURIComponent(opts.namespace)}/secrets`
  const selector = `fieldSelector=${encodeURIComponent(`metadata.name=${opts.name}`)}`
  let rv: string | undefined
  let open = false
  let closed = false
  let wake: (() => void) | undefined
  let failures = 0
  let listedJustNow = false
  let goneAfterList = false
  const abort = new AbortController()

  async function list(): Promise<void> {
    const res = await api.request('GET', `${collection}?${selector}`)
    if (res.status === 410) throw new Gone()
    if (res.status !== 200) throw new BackendError(reasonOfStatus(res.status), `list answered HTTP ${res.status}${statusMessage(res.json, secrets())}`)
    const listed = (res.json as { kind?: unknown; metadata?: { resourceVersion?: unknown } } | undefined)?.metadata?.resourceVersion
    if (!resumable(listed)) throw new BackendError('bad_response', 'the list answer has no metadata.resourceVersion a watch can resume from')
    rv = listed
    opts.onChange()
  }

  async function watchOnce(): Promise<void> {
    const query = `${selector}&watch=true&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv!)}&timeoutSeconds=${timeoutSeconds}`
    let gone = false
    let events = 0
    const startedAt = Date.now()
    const end = await api.stream(
      `${collection}?${query}`,
      (line) => {
        let event: WatchEvent
        try {
          event = JSON.parse(line) as WatchEvent
        } catch {
          throw new ApiTransportError('bad_response', 'a watch event that is not JSON')
        }
        // Any other shape is malformed too, never a TypeError counted as io_error.
        if (typeof event !== 'object' || event === null) throw new ApiTransportError('bad_response', 'a watch event that is not a JSON object')
        if (event.type === 'ERROR') {
          if (event.object?.code === 410 || event.object?.reason === 'Expired' || event.object?.reason === 'Gone') {
            gone = true
            return 'stop'
          }
          const code = event.object?.code
          throw new BackendError(
            typeof code === 'number' ? reasonOfStatus(code) : 'server_error',
            `the watch sent an error (code ${typeof code === 'number' ? code : '?'})`,
          )
        }
        const next = event.object?.metadata?.resourceVersion
        // One that could not be sent back would fail every watch after it: malformed, and the
        // watch resumes from the last good one.
        if (!resumable(next) || typeof event.type !== 'string' || !['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK'].includes(event.type)) {
          throw new ApiTransportError('bad_response', 'a watch event without type or resourceVersion')
        }
        // Only an event proves the watch healthy: an ERROR event (a 410 right after a list, a
        // 500 on every attempt) neither skips the backoff nor resets it.
        goneAfterList = false
        events++
        if (!open) {
          open = true
          if (failures > 0) logger.info({ event: 'watch_resumed', location: opts.location, resource_version: loggable(rv) }, 'watching the Secret again')
          failures = 0
        }
        rv = next
        if (event.type !== 'BOOKMARK') opts.onChange()
        return undefined
      },
      // The server ends the stream after timeoutSeconds; silence well past it is a dead connection.
      { idleMs: (timeoutSeconds + 30) * 1000, maxLineBytes: opts.maxEventBytes, signal: abort.signal },
    )
    if (end.ended === 'refused') {
      if (end.status === 410) gone = true
      else throw new BackendError(reasonOfStatus(end.status), `watch answered HTTP ${end.status}${statusMessage(end.json, secrets())}`)
    }
    if (gone) throw new Gone()
    // client-go's "very short watch": a stream that ends at once with nothing in it is a failure
    // (backed off), else a proxy closing every watch would have it re-sent as fast as it returns.
    if (events === 0 && Date.now() - startedAt < SHORT_WATCH_MS) throw new BackendError('bad_response', 'the watch closed at once without an event')
  }

  async function run(): Promise<void> {
    while (!closed) {
      try {
        listedJustNow = rv === undefined
        if (listedJustNow) await list()
        await watchOnce()
        goneAfterList = false
        open = false
        // The server closed the stream (timeoutSeconds): resume from the last resourceVersion.
      } catch (err) {
        open = false
        if (closed) return
        // A 410 right after a list is not routine (the list's own resourceVersion expired at once):
        // it goes through the backoff below like any failure, so nothing loops hot.
        if (err instanceof Gone && !goneAfterList) {
          goneAfterList = listedJustNow
          logger.info(
            { event: 'watch_relist', location: opts.location, resource_version: loggable(rv) },
            'the watch resourceVersion expired (410 Gone); listing again',
          )
          rv = undefined
          continue
        }
        if (err instanceof Gone) rv = undefined
        failures++
        const message = err instanceof Error ? err.message : String(err)
        const reason = reasonOf(err)
        logger.warn(
          { event: 'watch_failed', reason, location: opts.location, failures, error: message.slice(0, 300) },
          'the Secret watch broke; retrying, the last good keyset stays in force',
        )
        // A cut connection is routine (an API server or a load balancer restarting): the watch
        // resumes, and if the API is really unreachable the read below fails and counts it.
        // Anything else is the API refusing or failing the watch while reads may succeed.
        if (reason !== 'unreachable') opts.onFailure?.(reason)
        // A read now counts the failure (if the API is down) and catches what the stream missed.
        opts.onChange()
        const delay = Math.floor(random() * Math.min(maxMs, minMs * 2 ** Math.min(failures - 1, 16)))
        await new Promise<void>((resolve) => {
          wake = resolve
          const t = setTimeout(resolve, Math.max(delay, 50))
          t.unref()
        })
        wake = undefined
      }
    }
  }

  void run()
  return {
    resourceVersion: () => rv,
    connected: () => open,
    close() {
      closed = true
      abort.abort()
      wake?.()
    },
  }
}

/** A failed attempt's bounded reason: a 410 again right after a list is the API server's failure. */
function reasonOf(err: unknown): BackendErrorReason {
  if (err instanceof BackendError || err instanceof ApiTransportError) return err.reason
  return err instanceof Gone ? 'server_error' : 'io_error'
}

/** The Status message of a refused list or watch: foreign text (a proxy or webhook writes it too), redacted, escaped, bounded. */
function statusMessage(json: unknown, secrets: readonly string[]): string {
  const message = (json as { message?: unknown } | undefined)?.message
  return typeof message === 'string' ? `: ${printable(message, { secrets })}` : ''
}

/** A resourceVersion the next watch request can carry: text a URL can hold (no lone surrogate), not too long. */
function resumable(rv: unknown): rv is string {
  if (typeof rv !== 'string' || rv === '') return false
  try {
    return encodeURIComponent(rv).length <= MAX_RESUME_CHARS
  } catch {
    return false
  }
}

/** A resourceVersion is opaque text chosen by whatever answers for the API server: escaped and bounded in a log line or a message. */
export function loggableResourceVersion(rv: string): string {
  return printable(rv, { max: 64 })
}

function loggable(rv: string | undefined): string | undefined {
  return rv === undefined ? undefined : loggableResourceVersion(rv)
}
