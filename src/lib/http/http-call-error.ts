/**
 * Why an outbound HTTP call got no usable answer — a closed vocabulary. Each caller maps
 * these to its own (a backend's failure reasons, the fleet's report lines); nobody parses
 * the message.
 *
 * - `unreachable`: no connection, or it broke before the answer was complete (`code` says which).
 * - `tls`: the server's certificate was refused (unknown issuer, wrong name, expired…).
 * - `timeout`: no complete answer within the deadline (connect to last byte).
 * - `too_large`: the body is over the cap (declared or as it streamed).
 * - `redirect`: the server answered 3xx; redirects are never followed (`status` says which).
 * - `aborted`: the caller's signal fired, or the client was closed.
 */
export const HTTP_CALL_FAILURE_KINDS = ['unreachable', 'tls', 'timeout', 'too_large', 'redirect', 'aborted'] as const
export type HttpCallFailureKind = (typeof HTTP_CALL_FAILURE_KINDS)[number]

/**
 * The one failure type of the outbound HTTP client. Its message never holds a secret the
 * client was told about (see `HttpClientOptions.secrets`).
 *
 * @example
 * try { await client.request({ path: '/v1/keys' }) }
 * catch (err) { if (err instanceof HttpCallError && err.kind === 'timeout') … }
 */
export class HttpCallError extends Error {
  readonly kind: HttpCallFailureKind
  /** The Node error code (`ECONNREFUSED`, `CERT_HAS_EXPIRED`…), when there is one. */
  readonly code: string | undefined
  /** The HTTP status, for `redirect` and `too_large`. */
  readonly status: number | undefined
  constructor(kind: HttpCallFailureKind, message: string, details: { code?: string | undefined; status?: number | undefined; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.name = 'HttpCallError'
    this.kind = kind
    this.code = details.code
    this.status = details.status
  }
}

/** OpenSSL's certificate-verification codes Node passes on, and its TLS error prefixes. */
const TLS_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'HOSTNAME_MISMATCH',
  'EPROTO',
])

/** The kind of a socket-level error: `tls` for a refused certificate, else `unreachable`. */
export function socketFailureKind(code: string | undefined): 'tls' | 'unreachable' {
  if (code === undefined) return 'unreachable'
  return TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_') ? 'tls' : 'unreachable'
}
