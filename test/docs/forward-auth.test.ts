import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import YAML from 'yaml'
import { REJECTIONS } from '../../src/lib/core/rejection.js'
import { identityHeaders } from '../../src/server/identity-headers.js'
import { requiredScopes } from '../../src/server/required-scopes.js'
import { PROJECT_ROOT } from '../support/service.js'

/** The fenced `yaml` block that follows `## <heading>`. */
function yamlBlockUnder(markdown: string, heading: string): string {
  const section = markdown.split(`\n## ${heading}`)[1] ?? ''
  return /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? ''
}

const FULL_IDENTITY = Object.keys(identityHeaders('k', { sub: 's', client_id: 'c', scope: 'a b', iat: 1, exp: 2 })).sort()

/** Every header a refusal of /v1/auth carries (401, 403, 503), but content-length, which Envoy sets itself. */
function refusalHeaders(): string[] {
  const scope = requiredScopes('/v1/auth?scope=orders:write')
  assert.ok(scope)
  const names = new Set(['x-auth-reason', ...Object.keys(scope.rejection.headers)])
  for (const r of Object.values(REJECTIONS)) for (const name of Object.keys(r.headers)) names.add(name)
  return [...names].sort()
}

interface EnvoyFilter {
  name: string
  typed_config: {
    default_source_code?: { inline_string: string }
    http_service?: {
      path_prefix: string
      authorization_request: { allowed_headers: { patterns: Array<{ exact: string }> } }
      authorization_response: {
        allowed_upstream_headers: { patterns: Array<{ exact: string }> }
        allowed_client_headers: { patterns: Array<{ exact: string }> }
      }
    }
  }
}

describe('docs/forward-auth.md', () => {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/forward-auth.md'), 'utf8')

  it('documents exactly the identity headers the code can send', () => {
    const documented = [...doc.matchAll(/^\| `(X-Auth-[A-Za-z-]+)` \|/gm)].map((m) => m[1]!.toLowerCase()).sort()
    assert.deepEqual(documented, FULL_IDENTITY)
  })

  it('every nginx auth_request_set reads a header the code sends (or X-Auth-Reason)', () => {
    const sent = new Set([...Object.keys(identityHeaders('k', { sub: 's', client_id: 'c', scope: 'a', iat: 1, exp: 2 })), 'x-auth-reason'])
    const read = [...doc.matchAll(/\$upstream_http_(x_auth_[a-z_]+)/g)].map((m) => m[1]!.replaceAll('_', '-'))
    assert.ok(read.length >= 6)
    for (const header of read) assert.ok(sent.has(header), header)
  })

  it('Traefik: asks /v1/auth, takes every identity header and strips the client-sent ones', () => {
    const middleware = YAML.parse(yamlBlockUnder(doc, 'Traefik ForwardAuth')) as {
      spec: { forwardAuth: { address: string; trustForwardHeader: boolean; authResponseHeadersRegex: string } }
    }
    const { address, trustForwardHeader, authResponseHeadersRegex } = middleware.spec.forwardAuth
    assert.equal(new URL(address).pathname, '/v1/auth')
    assert.equal(trustForwardHeader, false)
    // Go's (?i) prefix is JavaScript's i flag; Traefik matches the canonical names (X-Auth-Subject).
    const regex = new RegExp(authResponseHeadersRegex.replace(/^\(\?i\)/, ''), authResponseHeadersRegex.startsWith('(?i)') ? 'i' : '')
    const canonical = (h: string) => h.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase())
    for (const header of [...FULL_IDENTITY, 'x-auth-admin']) assert.ok(regex.test(canonical(header)), `${canonical(header)} is not matched`)
    assert.ok(!regex.test('Authorization'))
  })

  it('Envoy: asks /v1/auth with the token and the address, passes on the identity and the whole refusal', () => {
    const envoy = YAML.parse(yamlBlockUnder(doc, 'Envoy `ext_authz`')) as { use_remote_address: boolean; http_filters: EnvoyFilter[] }
    assert.equal(envoy.use_remote_address, true)
    const names = envoy.http_filters.map((f) => f.name)
    assert.deepEqual(names, ['envoy.filters.http.lua', 'envoy.filters.http.ext_authz', 'envoy.filters.http.router'])
    const service = envoy.http_filters[1]!.typed_config.http_service!
    assert.equal(service.path_prefix, '/v1/auth')
    const exact = (list: { patterns: Array<{ exact: string }> }) => list.patterns.map((p) => p.exact).sort()
    assert.deepEqual(exact(service.authorization_request.allowed_headers), ['authorization', 'x-forwarded-for'])
    assert.deepEqual(exact(service.authorization_response.allowed_upstream_headers), FULL_IDENTITY)
    // Envoy adds only its own few (WWW-Authenticate, Content-Length, …) to a denial beyond this list.
    assert.deepEqual(exact(service.authorization_response.allowed_client_headers), refusalHeaders())
  })

  it("Envoy's Lua filter removes every header starting with x-auth-", () => {
    const lua = (YAML.parse(yamlBlockUnder(doc, 'Envoy `ext_authz`')) as { http_filters: EnvoyFilter[] }).http_filters[0]!.typed_config.default_source_code!
      .inline_string
    const m = /string\.sub\(name, 1, (\d+)\) == "([^"]+)"/.exec(lua)
    assert.ok(m, lua)
    assert.equal(m[2], 'x-auth-')
    assert.equal(Number(m[1]), m[2]!.length)
  })
})
