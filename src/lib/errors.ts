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
  /**
   * A framework adapter was registered twice on the same instance (or its parent), or a
   * registry already holds the metrics of another cbc-jwt instance that is still open.
   */
  ALREADY_REGISTERED: 'ERR_ALREADY_REGISTERED',
  /** An input a command was given to read (a log file, stdin) cannot be read. */
  INPUT: 'ERR_INPUT',
} as const

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES]

/**
 * The error-code registry: for every code, the classes that carry it and the CLI's exit status
 * when a command ends with it (2: the caller's command line or configuration is to fix; 1: a
 * failed check, a refusal, or a failure elsewhere). docs/errors.md has one row per code;
 * test/lib/errors.test.ts holds it, and every code and coded class written in src/, to this
 * table. To add a code: `ERROR_CODES`, here (the compiler asks for it), then docs/errors.md.
 */
export const ERROR_REGISTRY: { readonly [C in ErrorCode]: { readonly classes: readonly string[]; readonly cliExit: 1 | 2 } } = {
  ERR_KEYSET_INVALID: { classes: ['KeysetInvalidError'], cliExit: 1 },
  ERR_BACKEND: { classes: ['BackendError', 'ProjectionWriteError'], cliExit: 1 },
  ERR_CAS_CONFLICT: { classes: ['CasConflictError'], cliExit: 1 },
  ERR_CONFIG: { classes: ['ConfigError'], cliExit: 2 },
  ERR_USAGE: { classes: ['UsageError'], cliExit: 2 },
  ERR_REFUSED: { classes: ['RefusedError', 'TtlTooLongError'], cliExit: 1 },
  ERR_NOT_READY: { classes: ['CbcJwtError'], cliExit: 1 },
  ERR_NO_SIGNING_KEY: { classes: ['NoSigningKeyError'], cliExit: 1 },
  ERR_ALREADY_REGISTERED: { classes: ['CbcJwtError'], cliExit: 1 },
  ERR_INPUT: { classes: ['InputError'], cliExit: 1 },
}

/**
 * Codes of errors that never reach a caller as they are: the module that raises one turns it
 * into a coded error of the registry first (docs/errors.md, "Inside cbc-jwt").
 */
export const INTERNAL_ERROR_CODES = {
  /** `OwnerNotKeptError`: a file write could not give the replacement the old file's owner; the file backend answers `BackendError('forbidden')`. */
  EOWNER: { classes: ['OwnerNotKeptError'], becomes: ERROR_CODES.BACKEND },
  /** `LockTimeoutError`: another live writer held a keyset file's lock past the wait; the file backend answers `BackendError('timeout')`. */
  ELOCKED: { classes: ['LockTimeoutError'], becomes: ERROR_CODES.BACKEND },
} as const

export class CbcJwtError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    // The class's own name for every subclass (`ConfigError: …`), without each one setting it.
    this.name = new.target.name
    this.code = code
  }
}

/**
 * The base of an error class whose every instance carries `code`:
 * `export class ConfigError extends codedError(ERROR_CODES.CONFIG) {}`.
 */
export function codedError(code: ErrorCode) {
  return class extends CbcJwtError {
    constructor(message: string, options?: { cause?: unknown }) {
      super(code, message, options)
    }
  }
}

export class CasConflictError extends codedError(ERROR_CODES.CAS_CONFLICT) {}
export class ConfigError extends codedError(ERROR_CODES.CONFIG) {}
export class UsageError extends codedError(ERROR_CODES.USAGE) {}
export class NoSigningKeyError extends codedError(ERROR_CODES.NO_SIGNING_KEY) {}
export class RefusedError extends codedError(ERROR_CODES.REFUSED) {}
export class InputError extends codedError(ERROR_CODES.INPUT) {}

/** One problem found in a keyset, with the JSON path it concerns: `keys[2].jwk.crv`. */
export interface KeysetProblem {
  path: string
  message: string
}

/** Problems named in a `KeysetInvalidError`'s message (one line on a terminal, in a log); `problems` holds them all. */
const PROBLEMS_IN_MESSAGE = 10

export class KeysetInvalidError extends CbcJwtError {
  readonly problems: readonly KeysetProblem[]
  /** `invalid_json` when the text does not parse, `invalid_keyset` when the document is wrong. */
  readonly reason: 'invalid_json' | 'invalid_keyset'
  constructor(problems: readonly KeysetProblem[], reason: 'invalid_json' | 'invalid_keyset' = 'invalid_keyset') {
    super(ERROR_CODES.KEYSET_INVALID, `invalid keyset: ${problemsInLine(problems)}`)
    this.problems = problems
    this.reason = reason
  }
}

/**
 * A keyset's problems for one line (an error message, a log line): the first ten, then how many
 * more there are. `keyset validate` prints every one.
 */
export function problemsInLine(problems: readonly KeysetProblem[]): string {
  const more = problems.length - PROBLEMS_IN_MESSAGE
  const named = problems.slice(0, PROBLEMS_IN_MESSAGE).map(formatProblem)
  if (more > 0) named.push(`… and ${more} more problem(s) (cbc-jwt keyset validate lists them all)`)
  return named.join('; ')
}

export function formatProblem(p: KeysetProblem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message
}

export class BackendError extends CbcJwtError {
  readonly reason: BackendErrorReason
  constructor(reason: BackendErrorReason, message: string, options?: { cause?: unknown }) {
    super(ERROR_CODES.BACKEND, message, options)
    this.reason = reason
  }
}
