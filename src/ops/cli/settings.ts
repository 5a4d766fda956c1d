import { maxTokenTtlSeconds, serviceConfigFromEnv, type ServiceConfig } from '../../lib/config.js'
import { UsageError } from '../../lib/errors.js'
import { formatDuration } from '../../lib/duration.js'
import { ROTATION_POLICY, defaultGraceMs, propagationWindowMs } from '../rotation/policy.js'
import type { RuleLifetime } from '../rotation/revocations.js'
import { durationFlag } from './args.js'

/**
 * The CLI's settings. Precedence, everywhere: built-in defaults < environment < flags.
 * The service's own variables are read by the service's parser (`serviceConfigFromEnv`),
 * given only the variables the CLI uses, so they mean exactly what they mean to the server.
 */
const SERVICE_VARS = [
  'CBC_JWT_BACKEND',
  'CBC_JWT_KEYSET_FILE',
  'CBC_JWT_REFRESH_INTERVAL_SECONDS',
  'CBC_JWT_ISSUER',
  'CBC_JWT_AUDIENCE',
  'CBC_JWT_CLOCK_TOLERANCE_SECONDS',
  'CBC_JWT_MAX_TOKEN_BYTES',
  'CBC_JWT_MAX_TOKEN_TTL',
  'CBC_JWT_TRUSTED_ISSUERS',
] as const

export function serviceSettings(env: NodeJS.ProcessEnv): ServiceConfig {
  const picked: NodeJS.ProcessEnv = {}
  for (const name of SERVICE_VARS) if (env[name] !== undefined) picked[name] = env[name]
  // `kubernetes` is a backend of the CLI only (the service reads the mounted secret volume).
  if (picked.CBC_JWT_BACKEND === 'kubernetes') delete picked.CBC_JWT_BACKEND
  return serviceConfigFromEnv(picked)
}

/** `--max-token-ttl` > `CBC_JWT_MAX_TOKEN_TTL` (a duration, or bare seconds) > 24 h. */
export function maxTokenTtlMs(env: NodeJS.ProcessEnv, flag: string | undefined): number {
  const fromFlag = durationFlag('max-token-ttl', flag)
  if (fromFlag !== undefined) return positive('--max-token-ttl', fromFlag)
  return maxTokenTtlSeconds(env.CBC_JWT_MAX_TOKEN_TTL) * 1000
}

/**
 * How long a revocation rule can still match a valid token: the max token TTL and the clock
 * tolerance, as the service has them — the longest of the keyset's own and of every trusted
 * issuer's (`CBC_JWT_TRUSTED_ISSUERS`: a rule by client, subject or jti matches their tokens
 * too, and an issuer's may live 30 days).
 */
export function ruleLifetime(env: NodeJS.ProcessEnv, flags: { 'max-token-ttl'?: string | undefined }): RuleLifetime {
  const config = serviceSettings(env)
  const own: RuleLifetime = { maxTokenTtlMs: maxTokenTtlMs(env, flags['max-token-ttl']), clockToleranceMs: config.clockToleranceSeconds * 1000 }
  return config.trustedIssuers.reduce<RuleLifetime>(
    (life, issuer) => ({
      maxTokenTtlMs: Math.max(life.maxTokenTtlMs, (issuer.maxTokenTtlSeconds ?? 0) * 1000),
      clockToleranceMs: Math.max(life.clockToleranceMs, (issuer.clockToleranceSeconds ?? 0) * 1000),
    }),
    own,
  )
}

/**
 * The grace a retiring key gets: `--grace`, else max(24 h, max token TTL). Below 24 h, or
 * below the longest token lifetime, it is refused: tokens still valid would stop verifying.
 */
export function graceMs(env: NodeJS.ProcessEnv, flags: { grace?: string | undefined; 'max-token-ttl'?: string | undefined }): number {
  const maxTtl = maxTokenTtlMs(env, flags['max-token-ttl'])
  const grace = durationFlag('grace', flags.grace)
  if (grace === undefined) return defaultGraceMs(maxTtl)
  if (grace < ROTATION_POLICY.minGraceMs) {
    throw new UsageError(`--grace ${flags.grace} is below the 24h minimum: old keys must keep verifying for at least 24 hours`)
  }
  if (grace < maxTtl) {
    throw new UsageError(
      `--grace ${flags.grace} is shorter than the longest token lifetime (${formatDuration(maxTtl)}, --max-token-ttl / CBC_JWT_MAX_TOKEN_TTL): valid tokens would be cut off`,
    )
  }
  return grace
}

/**
 * `--propagation` > 2 × `CBC_JWT_REFRESH_INTERVAL_SECONDS` (30) + 90 s. `promotes`: the window
 * gates a promotion (`rotate --promote`, `--auto`), not only a report of it (`status`).
 */
export function propagationMs(env: NodeJS.ProcessEnv, flag: string | undefined, { promotes = false } = {}): number {
  const fromFlag = durationFlag('propagation', flag)
  // A window of nothing promotes a key no replica may have read yet: that is what --force
  // says, and it must be said so, not reached through a number.
  if (fromFlag === 0 && promotes)
    throw new UsageError('--propagation 0 would promote a staged key before any replica has loaded it: use --promote --force to mean that')
  if (fromFlag !== undefined) return fromFlag
  return propagationWindowMs(serviceSettings(env).refreshIntervalSeconds)
}

/** The verifier's settings as the service has them; `--iss`/`--aud` override. */
export function verifierSettings(env: NodeJS.ProcessEnv, flags: { iss?: string | undefined; aud?: string | undefined }) {
  const config = serviceSettings(env)
  return {
    issuer: nonEmpty('--iss', flags.iss) ?? config.issuer,
    audience: nonEmpty('--aud', flags.aud) ?? config.audience,
    clockToleranceSeconds: config.clockToleranceSeconds,
    maxTokenBytes: config.maxTokenBytes,
    maxTokenTtlSeconds: config.maxTokenTtlSeconds,
  }
}

function positive(name: string, ms: number): number {
  if (ms <= 0) throw new UsageError(`${name} must be more than 0`)
  return ms
}

function nonEmpty(name: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  if (value === '') throw new UsageError(`${name} must not be empty`)
  return value
}
