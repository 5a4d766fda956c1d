// A real OpenID provider as a trusted issuer: `oidc-provider` (the certified
// Node.js implementation) on loopback over TLS with a private CA, issuing client-credentials
// access tokens as JWTs, and the real service process trusting that CA through
// NODE_EXTRA_CA_CERTS and finding the keys by discovery. The provider rotates its keys (the
// new kid is accepted at once), then stops (the last good keys hold, and the failures count).
import assert from 'node:assert/strict'
import type crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { makeKey, makeKeyset, signToken, validClaims, type TestKey } from '../support/keys.js'
import { series, valueOf } from '../support/metrics-text.js'
import { startOidcIssuer, OIDC_CLIENT, type RunningOidcIssuer } from '../support/oidc-issuer.js'
import { startService, type RunningService } from '../support/service.js'
import { makeTestTls, type TestTls } from '../support/test-tls.js'
import { waitFor } from '../support/wait.js'
import { cbcJwt } from '../ops/cli/cli.js'

/** An IdP signing key: the private JWK the provider holds, and the same key for signing tokens here. */
function idpKey(kid: string): { jwk: crypto.JsonWebKey; key: TestKey } {
  const key = makeKey('ES256', kid)
  return { jwk: { ...key.jwk, kid, use: 'sig', alg: 'ES256' }, key }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

describe('a real OpenID provider as a trusted issuer', () => {
  let tls: TestTls
  let idp: RunningOidcIssuer
  let service: RunningService
  const first = idpKey('idp-key-1')
  const second = idpKey('idp-key-2')
  // Our own key shares a kid with the provider's first key: a kid of one issuer must never
  // verify the other's tokens.
  const own = makeKey('ES256', 'idp-key-1')

  before(async () => {
    tls = makeTestTls()
    idp = await startOidcIssuer({ tls, keys: [first.jwk], audience: 'cbc-api' })
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-oidc-'))
    const keysetFile = path.join(dir, 'keyset.json')
    fs.writeFileSync(keysetFile, JSON.stringify(makeKeyset([own])))
    service = await startService({
      env: {
        CBC_JWT_KEYSET_FILE: keysetFile,
        NODE_EXTRA_CA_CERTS: tls.caFile,
        // No jwks_uri: found by discovery. A short refresh so the outage is seen within the test.
        CBC_JWT_TRUSTED_ISSUERS: JSON.stringify([
          { issuer: idp.issuer, audience: ['other-api', 'cbc-api'], refresh_interval_seconds: 1, unknown_kid_cooldown_seconds: 0 },
        ]),
      },
    })
  })
  after(async () => {
    await service?.stop()
    await idp?.stop()
  })

  it('accepts its client-credentials access token, on whoami and forward auth, scopes included', async () => {
    const token = await idp.token('orders:read')
    const whoami = await service.get('/v1/whoami', bearer(token))
    assert.equal(whoami.status, 200, whoami.body)
    assert.equal(whoami.json.client_id, OIDC_CLIENT.id)
    assert.equal(whoami.json.kid, 'idp-key-1')
    assert.equal(whoami.json.scope, 'orders:read')
    const granted = await service.get('/v1/auth?scope=orders:read', bearer(token))
    assert.equal(granted.status, 200)
    assert.equal(granted.headers.get('x-auth-client-id'), OIDC_CLIENT.id)
    assert.equal(granted.headers.get('x-auth-scope'), 'orders:read')
    const refused = await service.get('/v1/auth?scope=orders:write', bearer(token))
    assert.equal(refused.status, 403)
    assert.equal(refused.headers.get('x-auth-reason'), 'insufficient_scope')
  })

  it('lists its keys with their issuer in /v1/keys and cbc_jwt_key_info, never in the JWKS', async () => {
    const keys = (await service.get('/v1/keys')).json
    assert.equal(keys.issuer, 'cbc-omega2')
    assert.deepEqual(
      keys.keys.map((k: Record<string, unknown>) => [k.issuer, k.kid, k.status]),
      [
        ['cbc-omega2', 'idp-key-1', 'current'],
        [idp.issuer, 'idp-key-1', 'trusted'],
      ],
    )
    const info = series(await service.metrics(), 'cbc_jwt_key_info').map((s) => s.labels)
    assert.deepEqual(
      info.map((l) => [l.issuer, l.kid, l.status]).sort(),
      [
        ['cbc-omega2', 'idp-key-1', 'current'],
        [idp.issuer, 'idp-key-1', 'trusted'],
      ].sort(),
    )
    const jwks = (await service.get('/.well-known/jwks.json')).json
    assert.equal(jwks.keys.length, 1)
    assert.deepEqual(jwks.keys[0].x, own.jwk.x)
    // verify-rotation counts the keyset's keys only: the provider's key is not one of them.
    const check = await cbcJwt(['verify-rotation', '--url', service.url])
    assert.match(check.stdout, /^✓ 2\. keys loaded: cbc_jwt_keys_loaded 1, verifying keys in \/v1\/keys 1 \(idp-key-1\)$/m)
  })

  it('never lets a kid of one issuer verify a token of the other', async () => {
    // Our key, the provider's iss: looked up among the provider's keys, where that kid is another key.
    const ours = signToken(own, validClaims({ iss: idp.issuer }))
    assert.equal((await service.get('/v1/whoami', bearer(ours))).json.reason, 'bad_signature')
    // The provider's key, our iss: looked up in the keyset.
    const theirs = signToken(first.key, validClaims())
    assert.equal((await service.get('/v1/whoami', bearer(theirs))).json.reason, 'bad_signature')
    // Any other iss is bad_issuer, before any key lookup.
    const stranger = signToken(first.key, validClaims({ iss: `${idp.issuer}/evil` }))
    assert.equal((await service.get('/v1/whoami', bearer(stranger))).json.reason, 'bad_issuer')
    // Our own tokens are unaffected.
    assert.equal((await service.get('/v1/whoami', bearer(signToken(own, validClaims())))).status, 200)
  })

  it('accepts the new kid at once after the provider rotates its keys', async () => {
    const port = idp.port
    await idp.stop()
    idp = await startOidcIssuer({ tls, keys: [second.jwk, first.jwk], audience: 'cbc-api', port })
    const token = await idp.token('orders:write')
    assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid, 'idp-key-2')
    const whoami = await service.get('/v1/whoami', bearer(token))
    assert.equal(whoami.status, 200, whoami.body)
    assert.equal(whoami.json.kid, 'idp-key-2')
  })

  it('keeps the last good keys while the provider is down, and counts the failures', async () => {
    const beforeOutage = await idp.token('orders:read')
    const cached = await idp.token('orders:read')
    assert.equal((await service.get('/v1/whoami', bearer(cached))).status, 200)
    const errorsBefore = valueOf(await service.metrics(), 'cbc_jwt_backend_errors_total', { reason: 'unreachable' }) ?? 0
    await idp.stop()
    await waitFor(async () => (valueOf(await service.metrics(), 'cbc_jwt_backend_errors_total', { reason: 'unreachable' }) ?? 0) > errorsBefore, {
      // A read is due every second; a loaded machine may delay it, never skip it.
      timeoutMs: 60_000,
      what: 'a failed read of the stopped provider',
    })
    assert.equal((await service.get('/v1/whoami', bearer(beforeOutage))).status, 200, 'a token never seen before, checked against the last good keys')
    assert.equal((await service.get('/v1/whoami', bearer(cached))).status, 200, 'a cached token')
    const kids = (await service.get('/v1/keys')).json.keys.filter((k: { issuer: string }) => k.issuer === idp.issuer).map((k: { kid: string }) => k.kid)
    assert.deepEqual(kids.sort(), ['idp-key-1', 'idp-key-2'])
    const errorLine = service.logs().find((l) => l.event === 'issuer_error' && l.issuer === idp.issuer)
    assert.ok(errorLine, 'the failure is logged with the issuer')
    assert.deepEqual((errorLine.keeping as string[]).sort(), ['idp-key-1', 'idp-key-2'])
  })
})

describe('a real OpenID provider beside the service, over plain http on loopback', () => {
  let idp: RunningOidcIssuer
  let trusting: RunningService
  let notTrusting: RunningService
  let dir: string
  const key = idpKey('sidecar-key-1')
  const own = makeKey('ES256', 'own-1')

  before(async () => {
    idp = await startOidcIssuer({ keys: [key.jwk], audience: 'cbc-api' })
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-oidc-http-'))
    const keysetFile = path.join(dir, 'keyset.json')
    fs.writeFileSync(keysetFile, JSON.stringify(makeKeyset([own])))
    trusting = await startService({
      env: { CBC_JWT_KEYSET_FILE: keysetFile, CBC_JWT_TRUSTED_ISSUERS: JSON.stringify([{ issuer: idp.issuer, audience: 'cbc-api' }]) },
    })
    notTrusting = await startService({ env: { CBC_JWT_KEYSET_FILE: keysetFile } })
  })
  after(async () => {
    await trusting?.stop()
    await notTrusting?.stop()
    await idp?.stop()
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  })

  it('finds its keys by discovery and accepts its tokens', async () => {
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+$/)
    const whoami = await trusting.get('/v1/whoami', bearer(await idp.token('orders:read')))
    assert.equal(whoami.status, 200, whoami.body)
    assert.deepEqual([whoami.json.client_id, whoami.json.kid], [OIDC_CLIENT.id, 'sidecar-key-1'])
  })

  it('where it is not configured, its token is bad_issuer (not unknown_kid), and counted so', async () => {
    const refused = await notTrusting.get('/v1/whoami', bearer(await idp.token('orders:read')))
    assert.deepEqual([refused.status, refused.json.reason], [401, 'bad_issuer'])
    assert.equal(valueOf(await notTrusting.metrics(), 'cbc_jwt_auth_failures_total', { reason: 'bad_issuer' }), 1)
    assert.equal(valueOf(await notTrusting.metrics(), 'cbc_jwt_auth_failures_total', { reason: 'unknown_kid' }), 0)
  })
})
