import { fetchIssuerDocument, IssuerFetchFailure, type IssuerFetchLimits } from './issuer-fetch.js'
import { isLoopbackHttp } from './key-transport.js'

/**
 * Finds an issuer's `jwks_uri` through OpenID Connect Discovery 1.0 §4: the document at
 * `<issuer>/.well-known/openid-configuration`, whose `issuer` must equal the configured one
 * exactly (§4.3) — else a server (or whoever answers for it) could name another issuer's keys
 * as this one's. The `jwks_uri` must be https (plain http only from a loopback issuer). Failures are `IssuerFetchFailure`s
 * (`bad_response` for a document that does not say what it must).
 */
export async function discoverJwksUri(issuer: string, limits: IssuerFetchLimits): Promise<URL> {
  const url = new URL(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`)
  const { json: doc } = await fetchIssuerDocument(url, limits)
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new IssuerFetchFailure('bad_response', 'the discovery document is not a JSON object')
  const { issuer: named, jwks_uri: jwksUri } = doc as Record<string, unknown>
  // Never echoed: a foreign value does not reach a log line.
  if (named !== issuer) throw new IssuerFetchFailure('bad_response', 'the discovery document names another issuer than the one configured')
  let parsed: URL | undefined
  try {
    parsed = typeof jwksUri === 'string' ? new URL(jwksUri) : undefined
  } catch {
    parsed = undefined
  }
  // https; plain http only from an issuer itself on this host's loopback, to its loopback. An
  // https issuer's document never sends us to plain HTTP, nor to a port of our own host.
  const transportOk = parsed !== undefined && (parsed.protocol === 'https:' || (isLoopbackHttp(url) && isLoopbackHttp(parsed)))
  if (parsed === undefined || !transportOk || parsed.username !== '' || parsed.password !== '' || parsed.href.length > 2048) {
    throw new IssuerFetchFailure('bad_response', 'the discovery document has no https jwks_uri')
  }
  return parsed
}
