import fs from 'node:fs'
import tls from 'node:tls'
import { HttpCallError, parseJsonBody, requestOnce } from '../http/index.js'
import type { BackendErrorReason } from '../reasons.js'
import { freshnessSeconds } from './freshness.js'

/** Limits of every read from an issuer (its discovery document, its JWK Set). */
export interface IssuerFetchLimits {
  /** From connecting to the last byte. @default 5000 */
  timeoutMs: number
  /** A larger body (declared or streamed) is refused before it is parsed. @default 524288 */
  maxResponseBytes: number
  /** PEM trust anchors, the only ones (`withNodeCaStore` adds Node's). @default Node's store, with `NODE_EXTRA_CA_CERTS` */
  ca?: string | undefined
}

/** A JWK Set of a large tenant with certificate chains is tens of KiB; half a MiB is room, not a risk. */
export const ISSUER_FETCH_DEFAULTS: IssuerFetchLimits = { timeoutMs: 5000, maxResponseBytes: 512 * 1024 }

/**
 * Node's CA store and `extraPem`, as one PEM bundle: what the library option `trustedIssuersCa`
 * trusts — an issuer behind a private CA, without losing the public ones (Auth0, Entra ID) or
 * `NODE_EXTRA_CA_CERTS`, as that variable does for the service. An agent's `ca` replaces Node's
 * store, so the store is handed over with it.
 */
export function withNodeCaStore(extraPem: string): string {
  const withStore = (tls as { getCACertificates?: (type: 'default') => string[] }).getCACertificates
  // Node ≥ 22.15 says what its default store holds; before, its bundled roots and the extra file it read at start.
  const store = withStore ? withStore('default') : [...tls.rootCertificates, ...extraCaFile(process.env.NODE_EXTRA_CA_CERTS)]
  return [...store, extraPem].join('\n')
}

/** The certificates of `NODE_EXTRA_CA_CERTS`; none when it is unset or unreadable (Node warns about that itself). */
function extraCaFile(file: string | undefined): string[] {
  if (!file) return []
  try {
    return [fs.readFileSync(file, 'utf8')]
  } catch {
    return []
  }
}

/** A read from an issuer that gave nothing usable: the reason is the `cbc_jwt_backend_errors_total` label. */
export class IssuerFetchFailure extends Error {
  constructor(
    readonly reason: BackendErrorReason,
    message: string,
  ) {
    super(message)
  }
}

/** A document read from an issuer, and how long the issuer said it stays fresh (`Cache-Control`). */
export interface IssuerDocument {
  json: unknown
  /** Seconds; undefined when the issuer said nothing usable. */
  freshnessSeconds: number | undefined
}

/**
 * GETs a JSON document from an issuer through the one outbound HTTP client: a deadline, a body
 * cap, TLS verified, and a redirect never followed (a 3xx could hand the choice of keys to
 * another host). Resolves with the parsed body of a 200 and its freshness; anything else is an
 * `IssuerFetchFailure` (`invalid_json` for a 200 that is not JSON).
 */
export async function fetchIssuerDocument(url: URL, limits: IssuerFetchLimits): Promise<IssuerDocument> {
  let answer: Awaited<ReturnType<typeof requestOnce>>
  try {
    answer = await requestOnce(url, {
      timeoutMs: limits.timeoutMs,
      maxResponseBytes: limits.maxResponseBytes,
      ...(limits.ca !== undefined ? { ca: limits.ca } : {}),
    })
  } catch (err) {
    if (!(err instanceof HttpCallError)) throw err
    throw new IssuerFetchFailure(FAILURE_REASONS[err.kind], `${err.kind}: ${err.message}`)
  }
  const { status } = answer
  if (status === 200) {
    const body = parseJsonBody(answer.text)
    if (!body.isJson) throw new IssuerFetchFailure('invalid_json', 'the answer is not JSON')
    return { json: body.json, freshnessSeconds: freshnessSeconds(answer.headers) }
  }
  // A 404 is bad_response, not not_found: that reason means the keyset's own object is gone
  // (JWTKeysetObjectGone pages "restore it"), which another team's identity provider never is.
  const reason: BackendErrorReason = status === 401 || status === 403 ? 'forbidden' : status >= 500 ? 'server_error' : 'bad_response'
  throw new IssuerFetchFailure(reason, `HTTP ${status}`)
}

const FAILURE_REASONS: Record<HttpCallError['kind'], BackendErrorReason> = {
  unreachable: 'unreachable',
  tls: 'unreachable',
  timeout: 'timeout',
  too_large: 'bad_response',
  redirect: 'bad_response',
  aborted: 'io_error',
}
