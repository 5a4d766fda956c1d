import { BackendError, CasConflictError } from '../../errors.js'
import type { BackendErrorReason } from '../../reasons.js'
import { HttpCallError } from '../../http/index.js'
import { printable } from '../../logging/sanitize.js'

/**
 * One table from what Vault (or the network) did to a backend error reason, and whether
 * trying again may help. `invalid_json`/`invalid_keyset` are decided above the backend.
 */
export interface Failure {
  error: BackendError
  /** Worth another attempt: the failure may be gone in a moment. */
  transient: boolean
  /** The request certainly did not reach Vault's storage (safe to repeat a write). */
  notApplied: boolean
}

/** Reasons worth another attempt within one read. */
export const TRANSIENT_REASONS: ReadonlySet<BackendErrorReason> = new Set(['unreachable', 'timeout', 'server_error', 'sealed'])

/** Vault's answer to a check-and-set write against another version. */
const CAS_MISMATCH = 'check-and-set parameter did not match the current version'
/** Vault's errors as joined: long enough that the final cut (after redaction, in `redact`) decides. */
const MAX_ERRORS_TEXT = 4096
/** A Vault error message as printed: redacted first, then escaped and cut to this. */
const MAX_MESSAGE = 400

/** Node codes meaning the request never left this host or never reached a listener. */
const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])

/**
 * The `errors` strings of a Vault error body, joined, as Vault sent them: every message carrying
 * them reaches the caller through `redact`, which escapes it — once: escaped here too, a
 * backslash would print as four. Not cut short here: a secret is redacted from the whole
 * message first (`redact`).
 */
export function vaultErrors(json: unknown): string {
  if (typeof json !== 'object' || json === null || !Array.isArray((json as { errors?: unknown }).errors)) return ''
  const text = (json as { errors: unknown[] }).errors
    .filter((e): e is string => typeof e === 'string')
    .map((e) => e.replace(/\s+/g, ' ').trim())
    .join('; ')
  return text.length > MAX_ERRORS_TEXT ? text.slice(0, MAX_ERRORS_TEXT) : text
}

export function isCasMismatch(status: number, json: unknown): boolean {
  return status === 400 && vaultErrors(json).includes(CAS_MISMATCH)
}

/** What a non-2xx status means. `what` names the operation and location for the message. */
export function statusFailure(status: number, json: unknown, what: string): Failure {
  const errors = vaultErrors(json)
  const detail = `${what}: HTTP ${status}${errors ? ` (${errors})` : ''}`
  const make = (reason: BackendErrorReason, transient: boolean, notApplied = false): Failure => ({
    error: new BackendError(reason, detail),
    transient,
    notApplied,
  })
  if (status >= 300 && status < 400) {
    return { error: new BackendError('bad_response', `${detail}: redirect not followed`), transient: false, notApplied: true }
  }
  if (status === 401 || status === 403) return make('forbidden', false, true)
  if (status === 404) return make('not_found', false, true)
  // 503: sealed, or a standby that does not serve reads; nothing was applied.
  if (status === 503) return make('sealed', true, true)
  // 429 rate limit, 412 (Enterprise: index not yet replicated) and 5xx may pass.
  if (status === 429 || status === 412) return make('server_error', true, true)
  if (status >= 500) return make('server_error', true)
  return make('server_error', false)
}

/** A 2xx whose body is not the JSON envelope the API documents. */
export function badResponse(what: string, why: string): BackendError {
  return new BackendError('bad_response', `${what}: ${why}`)
}

/** Turns anything thrown during one attempt into a `Failure`. */
export function toFailure(err: unknown, what: string): Failure {
  if (err instanceof BackendError) return { error: err, transient: TRANSIENT_REASONS.has(err.reason), notApplied: false }
  if (err instanceof HttpCallError) {
    switch (err.kind) {
      case 'timeout':
        return { error: new BackendError('timeout', `${what}: ${err.message}`, { cause: err }), transient: true, notApplied: false }
      case 'redirect':
        return statusFailure(err.status ?? 0, undefined, what)
      case 'too_large':
        return { error: new BackendError('bad_response', `${what}: ${err.message}`, { cause: err }), transient: false, notApplied: false }
      case 'aborted':
        return { error: new BackendError('io_error', `${what}: backend closed`, { cause: err }), transient: false, notApplied: false }
      case 'unreachable':
      case 'tls':
        return {
          error: new BackendError('unreachable', `${what}: cannot reach Vault (${err.message})`, { cause: err }),
          transient: true,
          notApplied: err.code !== undefined && NOT_SENT_CODES.has(err.code),
        }
    }
  }
  const message = err instanceof Error ? err.message : String(err)
  return { error: new BackendError('io_error', `${what}: ${message}`, { cause: err }), transient: false, notApplied: false }
}

/**
 * Removes every known secret from an error's message, then escapes and bounds it: redaction
 * before the cut, so a secret across it cannot print as all but its last characters. Vault does
 * not echo tokens, but a proxy or a future code path might; this is the last line, not the first.
 */
export function redact<E extends Error>(err: E, secrets: readonly string[]): E {
  const message = printable(err.message, { secrets, max: MAX_MESSAGE })
  if (message === err.message) return err
  const options = { cause: err.cause }
  if (err instanceof BackendError) return new BackendError(err.reason, message, options) as unknown as E
  if (err instanceof CasConflictError) return new CasConflictError(message, options) as unknown as E
  err.message = message
  return err
}
