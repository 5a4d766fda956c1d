import { register as defaultRegistry, type Registry } from 'prom-client'
import type { KeysetBackend } from '../backends/backend.js'
import { chooseBackend } from '../backends/choose.js'
import { boundedCustomBackend } from '../backends/custom-backend.js'
import type { CbcJwtConfig } from '../config.js'
import { ConfigError } from '../errors.js'
import { createKeyring, type Keyring } from '../keyring/keyring.js'
import { withNodeCaStore } from '../issuers/issuer-fetch.js'
import { createTrustedIssuerKeys, type TrustedIssuerKeys } from '../issuers/remote-jwks.js'
import { createMetrics, type Metrics } from '../metrics/metrics.js'
import type { AuthFailureReason } from '../reasons.js'
import { claimedClientId } from '../logging/claimed-client-id.js'
import { forwardedChain } from '../logging/forwarded-for.js'
import { printable } from '../logging/sanitize.js'
import { createSuccessSampler } from '../logging/success-sampler.js'
import { clientIdClaim, loggableClientId, loggableJti, type JwtClaims } from '../verifier/claims.js'
import { createVerifier, type Verifier, type VerifyResult } from '../verifier/verifier.js'
import { bearerCredential, type AuthorizationHeader } from './bearer.js'
import type { CbcJwt, RequestContext } from './cbc-jwt.js'
import { jwksBody, keysBody } from './keys-view.js'
import { markClosed, placeMetrics } from './metrics-placement.js'
import { loggerFromOption, type CbcJwtLogger } from './logger.js'
import { refuseUnknownOptions, resolveConfig, type CbcJwtOptions } from './options.js'
import { provideAuthenticateNow } from './immediate.js'
import { REJECTIONS, type AuthRejection, type AuthResult } from './rejection.js'
import { signWith } from './sign.js'

/** Reasons given before a token's signature verified: its client id is only claimed. */
const UNVERIFIED_REASONS: ReadonlySet<AuthFailureReason> = new Set(['malformed', 'unsupported_alg', 'bad_issuer', 'unknown_kid', 'bad_signature'])

/** The composition and its parts, for the service (which serves its own registry and probes). */
export interface CbcJwtParts {
  cbc: CbcJwt
  config: CbcJwtConfig
  backend: KeysetBackend
  keyring: Keyring
  /** One per trusted issuer, in configuration order. */
  trustedIssuers: readonly TrustedIssuerKeys[]
  verifier: Verifier
  metrics: Metrics
  logger: CbcJwtLogger
}

/**
 * The one composition root: backend → keyring → verifier → metrics → rejection log. The
 * service, the Fastify plugin and the Express middleware are all built on it.
 */
export function composeCbcJwt(options: CbcJwtOptions = {}): CbcJwtParts {
  const config = resolveConfig(options)
  const env = options.env ?? process.env
  const now = options.now ?? Date.now
  const logger = loggerFromOption(options.logger, config.logLevel)
  const backend = backendFor(options.backend, config, env, logger)
  let metrics: Metrics | undefined
  const keyring = createKeyring({
    backend,
    logger,
    now,
    refreshIntervalMs: config.refreshIntervalSeconds * 1000,
    unknownKidCooldownMs: config.unknownKidCooldownSeconds * 1000,
    events: {
      onBackendError: (reason) => metrics?.backendError(reason),
      onRotation: () => metrics?.rotation(),
    },
  })
  const trustedIssuers = config.trustedIssuers.map((settings) =>
    createTrustedIssuerKeys({
      settings,
      clockToleranceSeconds: config.clockToleranceSeconds,
      maxTokenTtlSeconds: config.maxTokenTtlSeconds,
      logger,
      now,
      onError: (reason) => metrics?.backendError(reason),
      fetchLimits: options.trustedIssuersCa === undefined ? undefined : { ca: withNodeCaStore(options.trustedIssuersCa) },
    }),
  )
  const issuerKeys = new Map(trustedIssuers.map((t) => [t.issuer, t]))
  const verifier = createVerifier({
    issuer: config.issuer,
    audience: config.audience,
    clockToleranceSeconds: config.clockToleranceSeconds,
    maxTokenBytes: config.maxTokenBytes,
    maxTokenTtlSeconds: config.maxTokenTtlSeconds,
    tokenCacheEntries: config.tokenCacheEntries,
    tokenCacheMaxBytes: config.tokenCacheMaxBytes,
    trustedIssuers,
    now,
  })
  metrics = createMetrics({
    keyring,
    issuer: config.issuer,
    trustedIssuers,
    refreshIntervalSeconds: config.refreshIntervalSeconds,
    now,
    tokenCacheStats: () => verifier.tokenCache?.stats(),
  })
  const counted = metrics
  const sampleSuccess = createSuccessSampler({ rate: config.successLogSample, now })

  /** Where the request came from, for a log line: the peer, and a trusted proxy's chain. */
  function origin(line: Record<string, unknown>, request: RequestContext | undefined) {
    if (request?.remoteAddress !== undefined) line.remote_addr = request.remoteAddress
    if (config.trustProxy) {
      const chain = forwardedChain(request?.forwardedFor)
      if (chain) line.forwarded_for = chain
    }
  }

  function reject(
    reason: AuthFailureReason,
    result: Extract<VerifyResult, { ok: false }> | undefined,
    request: RequestContext | undefined,
    token?: string,
  ): AuthRejection {
    counted.authFailure(reason)
    const line: Record<string, unknown> = { event: 'auth_rejected', reason, kid: result?.kid ?? null, client_id: result?.clientId ?? null }
    // An id read from `azp` or `sub`, named: a rule by client does not match a `sub`.
    if (result?.clientIdClaim !== undefined) line.client_id_claim = result.clientIdClaim
    // A configured issuer's URL, never a token's `iss`.
    if (result?.issuer !== undefined) line.issuer = result.issuer
    // Configured values, and the token's `aud` escaped and bounded (loggableAudience).
    if (result?.audience !== undefined) {
      line.expected_audience = result.audience.expected.map((a) => printable(a, { max: 128 }))
      line.received_audience = result.audience.received ?? null
    }
    // A token whose signature did not verify: who it claims to be, marked so — the forger
    // of the drill was invisible without it. Never a decision, only a log field.
    if (token !== undefined && result?.clientId === undefined && UNVERIFIED_REASONS.has(reason)) {
      const claimed = claimedClientId(token)
      if (claimed !== undefined) line.client_id_unverified = claimed
    }
    origin(line, request)
    logger.warn(line, 'token rejected')
    return REJECTIONS[reason]
  }

  function accepted(kid: string, claims: JwtClaims, request: RequestContext | undefined) {
    const clientId = loggableClientId(claims)
    const sampled = sampleSuccess(kid, clientId)
    if (sampled === undefined) return
    const line: Record<string, unknown> = { event: 'auth_accepted', kid, client_id: clientId ?? null, iat: claims.iat, sampled }
    const claim = clientIdClaim(claims)
    if (clientId !== undefined && claim !== 'client_id') line.client_id_claim = claim
    // The id `revoke --jti` takes, for a token seen used from where it should not be.
    const jti = loggableJti(claims)
    if (jti !== undefined) line.jti = jti
    origin(line, request)
    logger.info(line, 'token accepted')
  }

  /** authenticate's answer, without a promise when nothing has to be waited for (immediate.ts). */
  function authenticateNow(header: AuthorizationHeader, request: RequestContext | undefined): AuthResult | Promise<AuthResult> {
    // Before the first keyset every answer would be a guess: 503, and nothing counted.
    if (!keyring.ready()) return REJECTIONS.not_ready
    const credential = bearerCredential(header)
    if (!('token' in credential)) return reject(credential.reason, undefined, request)
    const token = credential.token
    // A public-key signature may be checked on the threadpool: then, and only then, a promise.
    const result = verifier.verify(token, keyring.keyset())
    return result instanceof Promise ? result.then((settled) => afterVerify(settled, token, request)) : afterVerify(result, token, request)
  }

  function afterVerify(result: VerifyResult, token: string, request: RequestContext | undefined): AuthResult | Promise<AuthResult> {
    // Maybe a rotation this replica has not seen yet: one shared re-read, behind a cooldown.
    // A retired key's kid is known: no re-read can bring it back (and leaked-key tokens must not hold the cooldown).
    if (!result.ok && result.reason === 'unknown_kid' && result.kid !== undefined && result.retired !== true) return afterReread(token, request, result.issuer)
    return conclude(result, token, request)
  }

  async function afterReread(token: string, request: RequestContext | undefined, issuer: string | undefined): Promise<AuthResult> {
    // The kid is looked up again where the token's issuer keeps its keys: its JWK Set, or the keyset.
    await (issuer === undefined ? keyring.refreshForUnknownKid() : issuerKeys.get(issuer)!.refreshForUnknownKid())
    return conclude(await verifier.verify(token, keyring.keyset(), { again: true }), token, request)
  }

  function conclude(result: VerifyResult, token: string, request: RequestContext | undefined): AuthResult {
    if (!result.ok) return reject(result.reason, result, request, token)
    accepted(result.kid, result.claims, request)
    // The verifier's result is made for this call and has the same shape: handed on as it is.
    return result
  }

  let started: Promise<void> | undefined
  let closed: Promise<void> | undefined
  const cbc: CbcJwt = {
    config: Object.freeze({ ...config }),
    // The issuers' first reads run beside the keyset's, each bounded by its fetch deadline.
    start: () => (started ??= Promise.all([keyring.start(), ...trustedIssuers.map((t) => t.start())]).then(() => undefined)),
    close: () => {
      // Closed from the call on: an instance re-created after it may take over its registry.
      markClosed(cbc)
      closed ??= Promise.all([keyring.close(), ...trustedIssuers.map((t) => t.close())]).then(() => undefined)
      return closed
    },
    ready: () => keyring.ready(),
    // The claims' type is the caller's assertion, as with any JSON: nothing checks it at run time.
    authenticate: async <Claims extends JwtClaims>(header: AuthorizationHeader, request?: RequestContext) =>
      authenticateNow(header, request) as AuthResult<Claims> | Promise<AuthResult<Claims>>,
    sign: (claims, signOptions = {}) =>
      signWith(keyring.keyset(), claims, signOptions, {
        issuer: config.issuer,
        audience: config.audience,
        maxTokenTtlSeconds: config.maxTokenTtlSeconds,
        nowMs: now(),
      }),
    jwks: () => jwksBody(keyring, now()),
    keys: () => keysBody(keyring, now(), config.issuer, trustedIssuers),
    registerMetrics(registry: Registry = defaultRegistry) {
      placeMetrics(counted.registry, registry, cbc)
    },
  }
  provideAuthenticateNow(cbc, authenticateNow)
  return { cbc, config, backend, keyring, trustedIssuers, verifier, metrics, logger }
}

function backendFor(given: CbcJwtOptions['backend'], config: CbcJwtConfig, env: NodeJS.ProcessEnv, logger: CbcJwtLogger): KeysetBackend {
  // A backend of the caller's own gets a deadline on its reads: start() always resolves.
  if (typeof given === 'object') return boundedCustomBackend(given)
  return chooseBackend(config, {
    env,
    logger,
    whenNothingConfigured: () => {
      throw new ConfigError(
        'no keyset configured: set CBC_JWT_KEYSET_FILE (or CBC_JWT_BACKEND=vault or kubernetes), or pass keysetFile or backend to createCbcJwt; `npx cbc-jwt keyset init --alg ES256 > keyset.json` makes one',
      )
    },
  })
}

/**
 * Builds cbc-jwt for an API, configured by the environment (README.md, "Configure") unless options say
 * otherwise. Nothing is read until `start()`.
 *
 * @example
 * import { createCbcJwt } from 'cbc-jwt'
 * const cbc = createCbcJwt()                 // CBC_JWT_KEYSET_FILE, CBC_JWT_ISSUER, …
 * await cbc.start()
 * cbc.registerMetrics()                      // on prom-client's default registry
 * const result = await cbc.authenticate(req.headers.authorization)
 *
 * @example
 * const cbc = createCbcJwt({ keysetFile: '/var/run/secrets/cbc-jwt/jwt-keyset', audience: 'orders-api', env: {} })
 */
export function createCbcJwt(options: CbcJwtOptions = {}): CbcJwt {
  refuseUnknownOptions(options)
  return composeCbcJwt(options).cbc
}
