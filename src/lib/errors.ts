import type { BackendErrorReason } from './reasons.js'

/**
 * Coded errors: callers branch on `code`, never on the message. Messages name what failed
 * (a path, a variable, a JSON path) and never carry tokens or key material.
 */
export const ERROR_CODES = {
  /** A keyset document failed the schema or the semantic checks. */
  KEYSET_INVALID: 'ERR_KEYSET_INVALID',
  /** A backend read or write failed; `reason` says how. */
  BACKEND: 'ERR_BACKEND',
  /** A check-and-set write lost the race against another writer. */
  CAS_CONFLICT: 'ERR_CAS_CONFLICT',
  /** An operator's configuration (environment variable or flag value) is wrong. */
  CONFIG: 'ERR_CONFIG',
  /** A CLI was called with unknown flags, missing values or a bad combination. */
  USAGE: 'ERR_USAGE',
  /** A safety rule refused an operation (grace too short, promotion too early, …). */
  REFUSED: 'ERR_REFUSED',
  /** The library was asked for something that needs a keyset before the first one loaded. */
  NOT_READY: 'ERR_NOT_READY',
  /**
   * Signing was asked of a keyset that cannot sign: a verification keyset (no private key), or
   * one whose current key is past its own `not_after` (every verifier would reject the token).
   */
  NO_SIGNING_KEY: 'ERR_NO_SIGNING_KEY',
  /** A framework adapter was registered twice on the same instance (or its parent). */
  ALREADY_REGISTERED: 'ERR_ALREADY_REGISTERED',
} as const

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES]

export class CbcJwtError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CbcJwtError'
    this.code = code
  }
}

/** One problem found in a keyset, with the JSON path it concerns: `keys[2].jwk.crv`. */
export interface KeysetProblem {
  path: string
  message: string
}

export class KeysetInvalidError extends CbcJwtError {
  readonly problems: readonly KeysetProblem[]
  /** `invalid_json` when the text does not parse, `invalid_keyset` when the document is wrong. */
  readonly reason: 'invalid_json' | 'invalid_keyset'
  constructor(problems: readonly KeysetProblem[], reason: 'invalid_json' | 'invalid_keyset' = 'invalid_keyset') {
    super(ERROR_CODES.KEYSET_INVALID, `invalid keyset: ${problems.map(formatProblem).join('; ')}`)
    this.name = 'KeysetInvalidError'
    this.problems = problems
    this.reason = reason
  }
}

export function formatProblem(p: KeysetProblem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message
}

export class BackendError extends CbcJwtError {
  readonly reason: BackendErrorReason
  constructor(reason: BackendErrorReason, message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.BACKEND, message, options)
    this.name = 'BackendError'
    this.reason = reason
  }
}

export class CasConflictError extends CbcJwtError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.CAS_CONFLICT, message, options)
    this.name = 'CasConflictError'
  }
}

export class ConfigError extends CbcJwtError {
  constructor(message: string) {
    super(ERROR_CODES.CONFIG, message)
    this.name = 'ConfigError'
  }
}

export class UsageError extends CbcJwtError {
  constructor(message: string) {
    super(ERROR_CODES.USAGE, message)
    this.name = 'UsageError'
  }
}

export class NoSigningKeyError extends CbcJwtError {
  constructor(message: string) {
    super(ERROR_CODES.NO_SIGNING_KEY, message)
    this.name = 'NoSigningKeyError'
  }
}

export class RefusedError extends CbcJwtError {
  constructor(message: string) {
    super(ERROR_CODES.REFUSED, message)
    this.name = 'RefusedError'
  }
}
