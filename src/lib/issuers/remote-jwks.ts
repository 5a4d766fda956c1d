import { createCooldown } from '../keyring/cooldown.js'
import type { KeyringLogger } from '../keyring/keyring.js'
import type { LoadedKey } from '../keyset/load.js'
import type { BackendErrorReason } from '../reasons.js'
import type { IssuerRoute } from '../verifier/issuer-route.js'
import { discoverJwksUri } from './discovery.js'
import { nextRefreshSeconds } from './freshness.js'
import { ISSUER_FETCH_DEFAULTS, fetchIssuerDocument, IssuerFetchFailure, type IssuerFetchLimits } from './issuer-fetch.js'
import { JwksRefused, readJwksDocument, type RemoteKeySet } from './jwks-document.js'
import type { TrustedIssuerSettings } from './trusted-issuers.js'

export interface TrustedIssuerKeysOptions {
  settings: TrustedIssuerSettings
  /** Leeway and lifetime bound when the issuer sets none: the service's own. */
  clockToleranceSeconds: number
  maxTokenTtlSeconds: number
  logger: KeyringLogger
  /** Each failed read, with its reason (`cbc_jwt_backend_errors_total`). */
  onError?: ((reason: BackendErrorReason) => void) | undefined
  fetchLimits?: Partial<IssuerFetchLimits> | undefined
  /** @default Date.now */
  now?: (() => number) | undefined
}

export type IssuerRefreshTrigger = 'start' | 'interval' | 'unknown_kid'

/** A trusted issuer: the route the verifier checks its tokens by, and the JWK Set behind it. */
export interface TrustedIssuerKeys extends IssuerRoute {
  /** ms since the epoch of the last good read, or undefined. */
  lastSuccessAt(): number | undefined
  /** Reads the JWK Set now; concurrent calls share one read. */
  refresh(trigger?: IssuerRefreshTrigger): Promise<void>
  /** For a token whose kid is not loaded: one shared read, none again within the cooldown. */
  refreshForUnknownKid(): Promise<void>
  /**
   * First read, then one read per refresh interval — sooner when the issuer's `Cache-Control`
   * says its JWK Set goes stale sooner (never under a minute); resolves after the first read,
   * whatever its outcome.
   */
  start(): Promise<void>
  close(): Promise<void>
}

/**
 * A trusted issuer's keys, read from its JWK Set (`jwks_uri`, else found by discovery) and
 * held in memory: refreshed in the background, re-read once on an unknown `kid` (single-flight,
 * behind a cooldown: forged kids cost at most one read per cooldown), and kept — last good —
 * through any failure: a timeout, a redirect, a 5xx, an oversized or hostile document. Every
 * failure is counted and logged with its reason; a document is checked completely before it
 * replaces the keys in force ("validate, then swap").
 */
export function createTrustedIssuerKeys(options: TrustedIssuerKeysOptions): TrustedIssuerKeys {
  const { settings, logger } = options
  const now = options.now ?? Date.now
  const limits: IssuerFetchLimits = { ...ISSUER_FETCH_DEFAULTS, ...options.fetchLimits }
  const issuer = settings.issuer
  let inForce: RemoteKeySet | undefined
  let keys: ReadonlyMap<string, LoadedKey> | undefined
  let discovered: URL | undefined
  let lastSuccess: number | undefined
  let inFlight: Promise<void> | undefined
  const unknownKidCooldown = createCooldown(settings.unknownKidCooldownSeconds * 1000, now)
  let timer: NodeJS.Timeout | undefined
  let started = false
  let closed = false
  let failingSince: number | undefined
  /** What the last good read's `Cache-Control` allows, in seconds; undefined: the interval alone. */
  let freshness: number | undefined

  async function jwksUri(): Promise<URL> {
    if (settings.jwksUri !== undefined) return new URL(settings.jwksUri)
    discovered ??= await discoverJwksUri(issuer, limits)
    return discovered
  }

  async function readOnce(trigger: IssuerRefreshTrigger): Promise<void> {
    let next: RemoteKeySet
    let nextFreshness: number | undefined
    try {
      const doc = await fetchIssuerDocument(await jwksUri(), limits)
      nextFreshness = doc.freshnessSeconds
      next = readJwksDocument(doc.json, settings.algorithms, now(), inForce)
      if (next.keys.size === 0) throw new JwksRefused('invalid_keyset', 'the JWK Set holds no key this issuer may sign with')
    } catch (err) {
      if (!(err instanceof IssuerFetchFailure || err instanceof JwksRefused)) throw err
      // The discovery document may have moved the keys: ask it again next time.
      discovered = undefined
      failed(err.reason, trigger, err.message)
      return
    }
    const before = inForce
    inForce = next
    keys = next.keys
    lastSuccess = now()
    freshness = nextFreshness
    const added = [...next.keys.keys()].filter((kid) => !before?.keys.has(kid))
    const removed = before ? [...before.keys.keys()].filter((kid) => !next.keys.has(kid)) : []
    if (failingSince !== undefined) {
      logger.info(
        { event: 'issuer_recovered', issuer, trigger, failing_for_seconds: Math.round((now() - failingSince) / 1000) },
        'trusted issuer readable again',
      )
      failingSince = undefined
    }
    if (before === undefined || added.length > 0 || removed.length > 0) {
      // Kids passed the safe-kid grammar of readJwksDocument; skipped keys are counted by kind only.
      logger.info(
        { event: 'issuer_keys_loaded', issuer, trigger, kids: [...next.keys.keys()], added, removed, skipped: next.skipped },
        'trusted issuer keys loaded',
      )
    }
  }

  function failed(reason: BackendErrorReason, trigger: IssuerRefreshTrigger, message: string) {
    failingSince ??= now()
    options.onError?.(reason)
    logger.error(
      { event: 'issuer_error', issuer, reason, trigger, keeping: keys ? [...keys.keys()] : null, error: message },
      keys ? 'trusted issuer keys read failed; the last good keys stay in force' : 'trusted issuer keys read failed; none loaded yet',
    )
  }

  /**
   * The background read, re-armed after each one from what the last good read allows. After a
   * failed read nothing is fresh: the next comes as soon as the floor allows (a minute), so an
   * outage fails a read in every 5-minute window `JWTSecretsBackendErrors` looks back over, and
   * the end of it is seen within a minute.
   */
  function schedule(): void {
    if (closed) return
    const seconds = nextRefreshSeconds(settings.refreshIntervalSeconds, failingSince === undefined ? freshness : 0)
    timer = setTimeout(() => {
      void refresh('interval').finally(schedule)
    }, seconds * 1000)
    timer.unref()
  }

  function refresh(trigger: IssuerRefreshTrigger = 'interval'): Promise<void> {
    inFlight ??= readOnce(trigger).finally(() => {
      inFlight = undefined
    })
    return inFlight
  }

  return {
    issuer,
    audiences: settings.audiences,
    leeway: settings.clockToleranceSeconds ?? options.clockToleranceSeconds,
    maxTokenTtlSeconds: settings.maxTokenTtlSeconds ?? options.maxTokenTtlSeconds,
    allowMissingIat: settings.allowMissingIat,
    scopeClaim: settings.scopeClaim,
    keys: () => keys,
    lastSuccessAt: () => lastSuccess,
    refresh,
    refreshForUnknownKid() {
      if (inFlight) return inFlight
      return unknownKidCooldown.due() ? refresh('unknown_kid') : Promise.resolve()
    },
    async start() {
      if (closed || started) return
      started = true
      await refresh('start')
      // Armed once the first read has said how fresh its answer is.
      schedule()
    },
    async close() {
      closed = true
      if (timer) clearTimeout(timer)
      timer = undefined
      await inFlight
    },
  }
}
