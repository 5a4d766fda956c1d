import { formatDuration, parseDuration } from './duration.js'
import { ConfigError } from './errors.js'
import { checkTrustedIssuers, TrustedIssuersProblem, type TrustedIssuerSettings } from './issuers/trusted-issuers.js'
import { OPTIONS, optionNames, type OptionName, type OptionScope, type OptionSpec, type OptionValue, type OptionValues } from './options-table.js'

/**
 * The library's configuration (README.md, "Configure"; docs/adopting.md): everything
 * `createCbcJwt` needs, the options of scope `library` in the options table. The listen address
 * is not part of it — an embedding API has its own server, so a library user never has `PORT`
 * parsed (or refused) on their behalf.
 */
export type CbcJwtConfig = Omit<OptionValues<'library'>, 'trustedIssuers'> & {
  /** Other issuers whose tokens are accepted (`CBC_JWT_TRUSTED_ISSUERS`), checked once. @default [] */
  trustedIssuers: readonly TrustedIssuerSettings[]
}

/** Where and how the service listens: read only by the service (`npm start`, `cbc-jwt serve`). */
export type ListenConfig = Omit<OptionValues<'service'>, 'devKeyset'>

/** Service configuration: the library's plus the listen address. Precedence: defaults < environment < CLI flags. */
export type ServiceConfig = CbcJwtConfig &
  ListenConfig & {
    /** Use the development keyset (`CBC_JWT_DEV_KEYSET`, `cbc-jwt serve --dev`). @default false */
    devKeyset?: boolean | undefined
  }

type Defaulted = { [K in OptionName]: (typeof OPTIONS)[K] extends { scope: 'library' | 'service'; default: unknown } ? K : never }[OptionName]

/** The defaults of the service's and the library's options, from the options table. */
export const DEFAULTS = Object.freeze(
  Object.fromEntries(
    Object.entries(OPTIONS as Record<string, OptionSpec>)
      .filter(([, spec]) => (spec.scope === 'library' || spec.scope === 'service') && spec.default !== undefined)
      .map(([name, spec]) => [name, spec.default]),
  ),
) as { readonly [K in Defaulted]: (typeof OPTIONS)[K] extends { default: infer D } ? D : never }

export const LOG_LEVELS = OPTIONS.logLevel.values

/** The library's configuration from the environment; `PORT` and `HOST` are not read. */
export function cbcJwtConfigFromEnv(env: NodeJS.ProcessEnv = process.env): CbcJwtConfig {
  const config = readScope(env, 'library') as Omit<CbcJwtConfig, 'trustedIssuers'>
  return { ...config, trustedIssuers: trustedIssuersFromEnv(env[OPTIONS.trustedIssuers.env], config.issuer) }
}

/** `CBC_JWT_TRUSTED_ISSUERS`: a JSON array of trusted issuers; empty or unset is none. */
export function trustedIssuersFromEnv(raw: string | undefined, ownIssuer: string): TrustedIssuerSettings[] {
  if (raw === undefined || raw.trim() === '') return []
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    throw new ConfigError('CBC_JWT_TRUSTED_ISSUERS must be a JSON array of issuers, e.g. [{"issuer":"https://idp.example.com","audience":"orders-api"}]')
  }
  try {
    return checkTrustedIssuers(value, ownIssuer)
  } catch (err) {
    if (err instanceof TrustedIssuersProblem) throw new ConfigError(`CBC_JWT_TRUSTED_ISSUERS${err.message}`)
    throw err
  }
}

/** Where the service listens, from `PORT`, `HOST` and the `CBC_JWT_HTTP_*` bounds. */
export function listenConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ListenConfig {
  const { devKeyset: _, ...listen } = readScope(env, 'service') as OptionValues<'service'>
  return listen
}

export function serviceConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  return { ...listenConfigFromEnv(env), ...cbcJwtConfigFromEnv(env), devKeyset: readOption(env, 'devKeyset') }
}

/** `CBC_JWT_MAX_TOKEN_TTL`: a duration (`24h`, `90m`) or a bare number of seconds; at least 1 s. @default 86400 */
export function maxTokenTtlSeconds(raw: string | undefined): number {
  return readOption({ [OPTIONS.maxTokenTtlSeconds.env]: raw }, 'maxTokenTtlSeconds')
}

function readScope(env: NodeJS.ProcessEnv, scope: OptionScope): Record<string, unknown> {
  return Object.fromEntries(optionNames(scope).map((name) => [name, readOption(env, name)]))
}

/**
 * One option from the environment, parsed as its table entry says. An empty (or blank) variable is unset,
 * unless the entry says that is a mistake. A bad value is the operator's: `ConfigError` naming
 * the variable.
 */
export function readOption<N extends OptionName>(env: NodeJS.ProcessEnv, name: N): OptionValue<(typeof OPTIONS)[N]> {
  return parse(OPTIONS[name], env[OPTIONS[name].env]) as OptionValue<(typeof OPTIONS)[N]>
}

const DECIMAL = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$/

function parse(spec: OptionSpec, raw: string | undefined): unknown {
  const name = spec.env
  if (raw !== undefined && raw.trim() === '' && spec.emptyHint !== undefined) {
    // A template that did not fill it in: refused rather than read as "unset", which would
    // start a service on no keyset, or on one nobody meant.
    throw new ConfigError(`${name} is set but empty: ${spec.emptyHint}, or unset it`)
  }
  if (raw === undefined || raw.trim() === '') return spec.default
  switch (spec.type) {
    case 'string':
    case 'json':
      return raw
    case 'enum': {
      const values = spec.values ?? []
      if (values.includes(raw)) return raw
      if (values.length > 3) throw new ConfigError(`${name} must be one of ${values.join(', ')} (got "${raw}")`)
      const quoted = values.map((v) => `"${v}"`)
      throw new ConfigError(`${name} must be ${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)} (got "${raw}")`)
    }
    case 'boolean':
      if (raw === 'true' || raw === '1') return true
      if (raw === 'false' || raw === '0') return false
      throw new ConfigError(`${name} must be true or false (got "${raw}")`)
    case 'duration': {
      const ms = /^\d+$/.test(raw.trim()) ? Number(raw) * 1000 : parseDuration(raw)
      if (ms === undefined || ms < (spec.min ?? 0) * 1000) throw new ConfigError(`${name} must be a duration like 24h or a number of seconds (got "${raw}")`)
      if (spec.max !== undefined && ms > spec.max * 1000) throw new ConfigError(`${name} must be at most ${formatDuration(spec.max * 1000)} (got "${raw}")`)
      return ms / 1000
    }
    case 'number':
    case 'integer': {
      const min = spec.min ?? Number.MIN_SAFE_INTEGER
      const max = spec.max ?? Number.MAX_SAFE_INTEGER
      // Decimal only: Number() would also read 0x1F90 as 8080 and 1e3 as 1000.
      const value = DECIMAL.test(raw) ? Number(raw) : Number.NaN
      if (!Number.isFinite(value) || value < min || value > max) throw new ConfigError(`${name} must be a number between ${min} and ${max} (got "${raw}")`)
      if (spec.type === 'integer' && !Number.isInteger(value)) throw new ConfigError(`${name} must be an integer (got "${raw}")`)
      return value
    }
  }
}
