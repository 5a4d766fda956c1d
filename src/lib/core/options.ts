import type { KeysetBackend } from '../backends/backend.js'
import { cbcJwtConfigFromEnv, type CbcJwtConfig } from '../config.js'
import { OPTIONS, optionNames, type LibraryOptionName, type OptionSpec, type OptionValue } from '../options-table.js'
import { ConfigError } from '../errors.js'
import { checkTrustedIssuers, TrustedIssuersProblem, type TrustedIssuer } from '../issuers/trusted-issuers.js'
import type { CbcJwtLogger } from './logger.js'

/** An option's value as code may pass it: an enum's values are checked when it is given, so any string. */
type Given<S> = S extends { type: 'enum' } ? string : OptionValue<S>

/** The options of the table that `createCbcJwt` takes as they are (`backend` and `trustedIssuers` take more). */
type TableOptions = {
  [K in keyof Pick<typeof OPTIONS, Exclude<LibraryOptionName, 'backend' | 'trustedIssuers'>>]?: Given<(typeof OPTIONS)[K]> | undefined
}

/**
 * Options of `createCbcJwt`. Each one given here wins over its environment variable; each one
 * left out is read from `env` (README.md, "Configure"), then from the defaults. Every option of
 * scope `library` in the options table (`src/lib/options-table.ts`, where each is documented with
 * its variable and default) is one, plus the ones below.
 */
export type CbcJwtOptions = TableOptions & {
  /**
   * Where the keyset comes from: `'file'` (with `keysetFile`), `'vault'` (configured by Vault's
   * variables, `docs/vault.md`), `'kubernetes'` (the Secret read and watched through the API,
   * `docs/kubernetes.md`), or any `KeysetBackend` object — `createFileBackend(path)`,
   * `createVaultBackend(options)` or your own.
   * @default 'file' (`CBC_JWT_BACKEND`)
   */
  backend?: 'file' | 'vault' | 'kubernetes' | KeysetBackend | undefined
  /**
   * Where log lines go (key loads, backend errors, one line per rejection — never a token):
   * a pino logger, Fastify's `app.log`, or any object with `info`/`warn`/`error`; `false`
   * for none. Anything else is a `TypeError` when cbc-jwt is built.
   * @default JSON lines on stdout, in pino's format
   */
  logger?: CbcJwtLogger | false | undefined
  /**
   * Other issuers whose tokens are accepted, each with its audience(s) and its JWK Set (its
   * `jwks_uri`, else found by OpenID Connect discovery) — see `TrustedIssuer` and
   * docs/trusted-issuers.md. Their keys never sign and never appear in `jwks()`.
   * @default [] (`CBC_JWT_TRUSTED_ISSUERS`)
   * @example
   * trustedIssuers: [{ issuer: 'https://acme.eu.auth0.com/', audience: 'https://orders.acme.com', scope_claim: 'permissions' }]
   */
  trustedIssuers?: readonly TrustedIssuer[] | undefined
  /**
   * PEM certificates trusted for the issuers' TLS beside Node's store, as `NODE_EXTRA_CA_CERTS` adds
   * them — for an API that cannot set that variable (the service uses it, read by Node at start).
   * @default Node's CA store, with `NODE_EXTRA_CA_CERTS`
   */
  trustedIssuersCa?: string | undefined
  /** The environment the options not given are read from. Pass `{}` to read none. @default process.env */
  env?: NodeJS.ProcessEnv | undefined
  /** Clock, ms since the epoch (tests). @default Date.now */
  now?: (() => number) | undefined
}

/**
 * The configuration in force: the environment's, with every option given in code over it.
 * An option of the wrong type or range is a programming error: `TypeError`/`RangeError`
 * naming it. A bad environment variable is the operator's: `ConfigError` naming the variable.
 */
export function resolveConfig(options: CbcJwtOptions): CbcJwtConfig {
  const config = cbcJwtConfigFromEnv(options.env ?? process.env)
  const { backend } = options
  if (backend === 'file' || backend === 'vault' || backend === 'kubernetes') config.backend = backend
  else if (backend !== undefined && (typeof backend !== 'object' || backend === null || typeof backend.read !== 'function')) {
    throw new TypeError(`createCbcJwt: backend must be 'file', 'vault', 'kubernetes' or a KeysetBackend object, got ${JSON.stringify(backend)}`)
  }
  for (const name of optionNames('library')) {
    if (name === 'backend' || name === 'trustedIssuers') continue
    const value = options[name]
    if (value !== undefined) (config as Record<string, unknown>)[name] = checked(name, OPTIONS[name], value)
  }
  if (options.trustedIssuers !== undefined) {
    try {
      config.trustedIssuers = checkTrustedIssuers(options.trustedIssuers, config.issuer)
    } catch (err) {
      if (err instanceof TrustedIssuersProblem) throw new TypeError(`createCbcJwt: trustedIssuers${err.message}`)
      throw err
    }
  } else if (config.trustedIssuers.some((t) => t.issuer === config.issuer)) {
    // The environment's list was checked against the environment's issuer; an issuer option may differ.
    throw new ConfigError(`CBC_JWT_TRUSTED_ISSUERS lists ${config.issuer}, the keyset's own issuer, whose tokens the keyset verifies`)
  }
  return config
}

/** A value given in code, checked against its entry in the options table. */
function checked(name: string, spec: OptionSpec, value: unknown): unknown {
  switch (spec.type) {
    case 'string':
      if (typeof value !== 'string' || value === '') throw new TypeError(`createCbcJwt: ${name} must be a non-empty string`)
      return value
    case 'boolean':
      if (typeof value !== 'boolean') throw new TypeError(`createCbcJwt: ${name} must be a boolean`)
      return value
    case 'enum':
      if (!(spec.values ?? []).includes(value as string)) throw new RangeError(`createCbcJwt: ${name} must be one of ${(spec.values ?? []).join(', ')}`)
      return value
    default: {
      const min = spec.min ?? Number.MIN_SAFE_INTEGER
      const max = spec.max ?? Number.MAX_SAFE_INTEGER
      if (typeof value !== 'number' || !(value >= min && value <= max)) {
        throw new RangeError(`createCbcJwt: ${name} must be a number from ${min} to ${max}, got ${JSON.stringify(value)}`)
      }
      return value
    }
  }
}

/** The options `createCbcJwt` takes besides those of the table. */
const CODE_ONLY_OPTIONS = ['logger', 'trustedIssuersCa', 'env', 'now'] as const

/**
 * An option name `createCbcJwt` does not know is refused, as the keyset refuses unknown fields:
 * a misspelt one (`maxTokenTtl` for `maxTokenTtlSeconds`, `refreshInterval`) would otherwise run
 * on its default without a word — from JavaScript, nothing else would catch it.
 */
export function refuseUnknownOptions(options: object): void {
  const known: string[] = [...optionNames('library'), ...CODE_ONLY_OPTIONS]
  for (const [name, value] of Object.entries(options)) {
    // An undefined value changes nothing, whatever its name (a spread of a wider object).
    if (known.includes(name) || value === undefined) continue
    const near = nearestName(name, known)
    // The adapters' own options, given to createCbcJwt: say where they belong.
    const hint =
      name === 'registry'
        ? ' (the metrics go on a registry with cbc.registerMetrics(registry); the adapters take registry)'
        : name === 'cbc'
          ? ' (cbc is an option of the adapters, not of createCbcJwt)'
          : near
            ? ` (did you mean ${near}?)`
            : ''
    throw new TypeError(`createCbcJwt: unknown option ${JSON.stringify(name).slice(1, -1).slice(0, 100)}${hint}; the options are ${known.join(', ')}`)
  }
}

/** The known name a misspelt one most likely meant: the same letters up to case and `_`, a prefix, or a few edits away. */
function nearestName(name: string, known: readonly string[]): string | undefined {
  const plain = (s: string) => s.toLowerCase().replace(/[_-]/g, '')
  const given = plain(name)
  if (given === '') return undefined
  let best: { name: string; distance: number } | undefined
  for (const candidate of known) {
    const c = plain(candidate)
    const distance = c === given ? 0 : c.startsWith(given) || given.startsWith(c) ? 1 : editDistance(given, c)
    if (distance <= 3 && (best === undefined || distance < best.distance)) best = { name: candidate, distance }
  }
  return best?.name
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 3) return 4
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    row = next
  }
  return row[b.length]!
}
