import { BackendError, KeysetInvalidError } from '../errors.js'
import type { KeysetBackend, KeysetSnapshot } from '../backends/backend.js'
import { loadKeysetYielding, parseKeysetText, type LoadedKey, type LoadedKeyset } from '../keyset/load.js'
import type { BackendErrorReason } from '../reasons.js'
import { keyStatus } from '../keyset/document.js'
import { nextRefreshSeconds } from '../issuers/freshness.js'
import { OPTIONS } from '../options-table.js'
import { createCooldown } from './cooldown.js'

/** What the keyring tells the outside (metrics) about its life. */
export interface KeyringEvents {
  onBackendError?(reason: BackendErrorReason): void
  onRotation?(from: string, to: string): void
  onLoad?(keyset: LoadedKeyset): void
}

export interface KeyringLogger {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface KeyringOptions {
  backend: KeysetBackend
  logger: KeyringLogger
  events?: KeyringEvents
  /**
   * How often the backend is read again, in ms, whatever the change events say; after a failed
   * read, the next comes within a minute (or at the interval, if shorter). @default 30000
   */
  refreshIntervalMs?: number
  /** At most one unknown-kid re-read per this many ms. @default 10000 */
  unknownKidCooldownMs?: number
  /** Clock, ms since the epoch. @default Date.now */
  now?: () => number
}

export type RefreshTrigger = 'start' | 'interval' | 'change' | 'unknown_kid'

export interface Keyring {
  /** The keyset in force, or undefined before the first good load. */
  keyset(): LoadedKeyset | undefined
  /** True once a valid keyset has been loaded; never false again. */
  ready(): boolean
  /** ms since the epoch of the last successful read (changed or not), or undefined. */
  lastSuccessAt(): number | undefined
  /** Keys that verify at `now` (not past `not_after`). */
  verifyingKeys(now?: number): LoadedKey[]
  /** Reads the backend now; concurrent calls share one read. */
  refresh(trigger?: RefreshTrigger): Promise<void>
  /**
   * Called when a token names a kid that is not loaded. Resolves once a read that began after
   * every change event this caller could have seen has finished: the read in flight when it
   * began after them, else one follow-up read shared by every such caller (never a chain).
   * When no change event is pending, a re-read happens at most once per cooldown, however
   * many forged kids ask.
   */
  refreshForUnknownKid(): Promise<void>
  /** Starts the first load, the change watch and the interval; resolves after the first read. Does nothing once closed. */
  start(): Promise<void>
  /** Stops timers and watchers; the keyset stays readable. */
  close(): Promise<void>
}

/**
 * The keyset in force and its refresh loop. Every read is parsed and validated completely
 * before it replaces the keyset in force ("validate, then swap"); any failure keeps the last
 * good keyset, counts a backend error and logs what failed — never the content.
 */
export function createKeyring(options: KeyringOptions): Keyring {
  const { backend, logger, events = {} } = options
  const now = options.now ?? Date.now
  const refreshIntervalMs = options.refreshIntervalMs ?? OPTIONS.refreshIntervalSeconds.default * 1000
  const unknownKidCooldown = createCooldown(options.unknownKidCooldownMs ?? OPTIONS.unknownKidCooldownSeconds.default * 1000, now)
  let inForce: LoadedKeyset | undefined
  /**
   * What the keyset in force was read as. A version alone does not identify a document: Vault's
   * numbers start again at 1 after `vault kv metadata delete`, and a backend passed in code may
   * reuse its own; so an unchanged read is the same version with the same text.
   */
  let loadedFrom: KeysetSnapshot | undefined
  let lastSuccess: number | undefined
  let inFlight: Promise<void> | undefined
  let timer: NodeJS.Timeout | undefined
  let again = false
  /** Change events seen so far, and their count when the latest read began. */
  let changeEvents = 0
  let eventsAtReadStart = 0
  /** The one read that follows the read in flight, for unknown-kid callers it began too early for. */
  let followUp: Promise<void> | undefined
  let closed = false
  /** start() arms the interval read; a keyring only ever refreshed by hand arms nothing. */
  let started = false
  /** The failing streak since the last good read: logged once when it ends. */
  let failing: { since: number; failures: number; reasons: Set<BackendErrorReason> } | undefined

  async function readOnce(trigger: RefreshTrigger): Promise<void> {
    let text: string
    let nextVersion: string
    try {
      const snapshot: Partial<KeysetSnapshot> | null = await backend.read()
      // A backend written in JavaScript (createCbcJwt({ backend })) may answer anything: no text
      // is a failed read like any other, never a TypeError thrown out of an unawaited refresh.
      if (typeof snapshot?.text !== 'string') throw new BackendError('bad_response', `${backend.location}: the backend's read() answered no keyset text`)
      ;({ text, version: nextVersion } = snapshot as KeysetSnapshot)
    } catch (err) {
      const reason = err instanceof BackendError ? err.reason : 'io_error'
      failed(reason, trigger, err instanceof Error ? err.message : String(err))
      return
    }
    if (inForce && nextVersion === loadedFrom?.version && text === loadedFrom.text) {
      lastSuccess = now()
      recovered(trigger)
      return
    }
    let loaded: LoadedKeyset
    try {
      // The keyset in force lends its imports of unchanged keys, so a reload costs the changed
      // ones; the load yields between imports, so even a full one never stalls requests for long.
      loaded = await loadKeysetYielding(parseKeysetText(text), now(), inForce)
    } catch (err) {
      if (!(err instanceof KeysetInvalidError)) throw err
      failed(err.reason, trigger, err.message)
      return
    }
    const previous = inForce
    inForce = loaded
    loadedFrom = { text, version: nextVersion }
    lastSuccess = now()
    recovered(trigger)
    const doc = loaded.document
    const kidsWith = (status: string) => doc.keys.filter((k) => keyStatus(doc, k) === status).map((k) => k.kid)
    logger.info(
      {
        event: 'keyset_loaded',
        trigger,
        location: backend.location,
        current: loaded.current.kid,
        keys: loaded.keys.size,
        // What an operator checks after a stage or a revoke, on each replica.
        staged: kidsWith('staged'),
        verify_only: kidsWith('verify-only'),
        revoked_before: doc.revoked_before ?? null,
        revocation_rules: loaded.revocations.size,
      },
      'keyset loaded',
    )
    events.onLoad?.(loaded)
    if (previous && previous.current.kid !== loaded.current.kid) {
      logger.info({ event: 'key_rotated', from: previous.current.kid, to: loaded.current.kid }, 'signing key rotated')
      events.onRotation?.(previous.current.kid, loaded.current.kid)
    }
  }

  /** After failing reads, the first good one says so: the end of the incident, on this replica. */
  function recovered(trigger: RefreshTrigger) {
    if (!failing) return
    const t = now()
    logger.info(
      {
        event: 'backend_recovered',
        trigger,
        location: backend.location,
        failed_reads: failing.failures,
        reasons: [...failing.reasons],
        failing_since: new Date(failing.since).toISOString(),
        failing_for_seconds: Math.round((t - failing.since) / 1000),
        current: inForce?.current.kid ?? null,
      },
      'keyset backend readable again',
    )
    failing = undefined
  }

  function failed(reason: BackendErrorReason, trigger: RefreshTrigger, message: string) {
    if (failing) {
      failing.failures++
      failing.reasons.add(reason)
    } else {
      failing = { since: now(), failures: 1, reasons: new Set([reason]) }
      // The interval read already armed may be a day away: the outage's reads start now.
      if (trigger !== 'interval') schedule()
    }
    events.onBackendError?.(reason)
    logger.error(
      { event: 'backend_error', reason, trigger, location: backend.location, keeping: inForce?.current.kid ?? null, error: message },
      inForce ? 'keyset load failed; the last good keyset stays in force' : 'keyset load failed; no keyset loaded yet',
    )
  }

  /**
   * The interval read, re-armed after each one. After a failed read nothing is fresh, as for a
   * trusted issuer: the next comes at the floor (a minute, or the interval if shorter), so an
   * outage fails a read in every 5-minute window `JWTSecretsBackendErrors` looks back over
   * whatever the interval, and its end is seen within a minute; a good read goes back to the
   * interval.
   */
  function schedule(): void {
    if (closed || !started) return
    clearTimeout(timer)
    const seconds = nextRefreshSeconds(refreshIntervalMs / 1000, failing === undefined ? undefined : 0)
    timer = setTimeout(() => {
      timer = undefined
      void refresh('interval').finally(schedule)
    }, seconds * 1000)
    timer.unref()
  }

  function refresh(trigger: RefreshTrigger = 'interval'): Promise<void> {
    if (inFlight) {
      // A change seen while a read runs may not be in that read: read once more after it.
      if (trigger === 'change') again = true
      return inFlight
    }
    // Waiters get this one read, never the follow-ups: a stream of change events must not
    // keep an unknown-kid request waiting behind read after read.
    eventsAtReadStart = changeEvents
    inFlight = readOnce(trigger).finally(() => {
      inFlight = undefined
      if (again && !closed) {
        again = false
        void refresh('change')
      }
    })
    return inFlight
  }

  return {
    keyset: () => inForce,
    ready: () => inForce !== undefined,
    lastSuccessAt: () => lastSuccess,
    verifyingKeys(at = now()) {
      if (!inForce) return []
      return [...inForce.keys.values()].filter((k) => k.notAfter === undefined || at < k.notAfter)
    },
    refresh,
    async refreshForUnknownKid() {
      if (!inFlight && eventsAtReadStart === changeEvents) {
        // The change event of a rotation is queued by the kernel before its first token exists,
        // yet the token can be handled first: let one whole poll phase of the event loop run (an
        // immediate queued from an immediate runs after the next poll) before deciding that
        // nothing changed. No syscall, no timer: a forged kid costs two loop turns.
        await new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve)))
      }
      const seen = changeEvents
      if (inFlight) {
        if (eventsAtReadStart >= seen) return inFlight
        // The read in flight began before a change this caller could have seen: one more read
        // after it, shared by every such caller (it may join the watch's own follow-up).
        followUp ??= inFlight.then(() => {
          followUp = undefined
          return closed ? undefined : refresh('unknown_kid')
        })
        return followUp
      }
      // A change no read has begun after yet (the watch coalesces events): read now, whatever
      // the cooldown. Such reads are bounded by the change events, one per event at most.
      if (eventsAtReadStart < seen) return refresh('unknown_kid')
      if (unknownKidCooldown.due()) return refresh('unknown_kid')
    },
    async start() {
      // Closed is final: a start after it (an app shut down while still booting) arms nothing
      // that no close would ever clear.
      if (closed) return
      backend.watch?.(
        () => {
          changeEvents++
          if (!closed) void refresh('change')
        },
        () => void changeEvents++,
        // The watch logs its own failure (`watch_failed`); counted here, not a failed read: the
        // read that follows it may succeed, and the streak of failed reads is theirs alone.
        (reason) => events.onBackendError?.(reason),
      )
      started = true
      await refresh('start')
      schedule()
    },
    async close() {
      closed = true
      clearTimeout(timer)
      timer = undefined
      // A backend of the caller's own may only read (all the keyring needs): nothing to stop then.
      if (typeof backend.close === 'function') await backend.close()
      await inFlight
    },
  }
}
