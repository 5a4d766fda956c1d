import { isScopeToken, scopesRejection, type ScopeRejection } from '../lib/core/scope.js'

/** What a gateway asked for with `/v1/auth?scope=…`: nothing, scopes to require, or a query no token can meet. */
export type RequiredScopes = { scopes: readonly string[]; rejection: ScopeRejection } | undefined

/** Distinct `scope` queries are few (one per gateway route): each is parsed once. */
const parsed = new Map<string, RequiredScopes>()
const MAX_REMEMBERED = 256
/**
 * Any client that reaches `/v1/auth` writes the query, up to the 64 KiB header limit: remembered
 * whole, 256 of them held about 15 MiB. A gateway's query is a few scopes; a longer one is parsed
 * for its request and forgotten.
 */
const MAX_REMEMBERED_CHARS = 1024

/**
 * The scopes a forward-auth request requires: every `scope` query parameter, each a
 * space-separated list of RFC 6749 scope-tokens, all required. A value that is not one (a
 * quote, a control character, two spaces) requires a scope no token holds — fail closed: a
 * gateway's typo must not let every token through.
 */
export function requiredScopes(url: string | undefined): RequiredScopes {
  const q = url?.indexOf('?') ?? -1
  if (q < 0) return undefined
  const query = url!.slice(q + 1)
  const known = parsed.get(query)
  if (known !== undefined || parsed.has(query)) return known
  const values = new URLSearchParams(query).getAll('scope')
  let result: RequiredScopes
  if (values.length > 0) {
    const scopes = values.flatMap((v) => v.split(' '))
    const clean = scopes.every(isScopeToken)
    // The 403 body names the scopes only when they are clean scope-tokens: a gateway typo is not echoed.
    result = { scopes: clean ? scopes : ['\u0000'], rejection: scopesRejection(clean ? scopes.join(' ') : 'invalid_scope_request') }
  }
  if (query.length > MAX_REMEMBERED_CHARS) return result
  if (parsed.size >= MAX_REMEMBERED) parsed.clear()
  parsed.set(query, result)
  return result
}
