// docs/adopting.md, run: the plain node:http example against the built package, and the
// JWKS section's claim that a JWKS consumer does not see revocation.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { serviceConfigFromEnv } from '../../src/lib/config.js'
import { createFileBackend } from '../../src/lib/backends/file-backend.js'
import { createLogger } from '../../src/server/logger.js'
import { createService, type Service } from '../../src/server/service.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { exampleBlock, runApp, type RunningApp } from '../support/packed-app.js'
import { rawRequest } from '../support/raw-http.js'
import { PROJECT_ROOT } from '../support/service.js'
import { PROCESS_LEVEL } from '../support/tier.js'

const ADOPTING = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/adopting.md'), 'utf8')
const key = makeKey('ES256', 'k-doc')

describe('docs/adopting.md: the node:http example', PROCESS_LEVEL, () => {
  let dir: string
  let app: RunningApp
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-doc-'))
    // The package by name, as the example imports it (the built checkout stands in for the tarball here).
    fs.mkdirSync(path.join(dir, 'node_modules'))
    fs.symlinkSync(PROJECT_ROOT, path.join(dir, 'node_modules/cbc-jwt'))
    fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}')
    fs.writeFileSync(path.join(dir, 'keyset.json'), JSON.stringify(makeKeyset([key])))
    fs.writeFileSync(path.join(dir, 'server.js'), exampleBlock(ADOPTING, 'node-http'))
    app = await runApp(dir, ['server.js'], { CBC_JWT_KEYSET_FILE: path.join(dir, 'keyset.json'), CBC_JWT_LOG_LEVEL: 'silent' })
  })
  after(async () => {
    await app?.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('a valid token → 200 hello <sub>; none → the 401 of CONTRACT §2', async () => {
    const ok = await fetch(`${app.base}/`, { headers: { authorization: `Bearer ${signToken(key, validClaims({ sub: 'carol' }))}` } })
    assert.equal(await ok.text(), 'hello carol\n')
    const missing = await fetch(`${app.base}/`)
    assert.equal(missing.status, 401)
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer')
    assert.deepEqual(await missing.json(), { error: 'invalid_token', reason: 'missing' })
  })

  it('two Authorization headers → 401 malformed (the example reads rawHeaders)', async () => {
    const t = `Bearer ${signToken(key, validClaims())}`
    const res = await rawRequest(app.port, ['GET / HTTP/1.1', 'Host: x', `Authorization: ${t}`, `Authorization: ${t}`])
    assert.equal(res.status, 401)
    assert.equal(JSON.parse(res.body).reason, 'malformed')
  })
})

describe('docs/adopting.md: what a JWKS consumer loses', () => {
  let dir: string
  let service: Service
  let base: string
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-jwks-'))
    const file = path.join(dir, 'keyset.json')
    const now = new Date().toISOString()
    const rules = [{ client_id: 'acme-batch', issued_before: now, created_at: now }]
    fs.writeFileSync(file, JSON.stringify({ ...makeKeyset([key], { revoked_before: now }), revocations: rules }))
    const config = { ...serviceConfigFromEnv({}), port: 0, host: '127.0.0.1', keysetFile: file }
    service = createService({ config, backend: createFileBackend(file), logger: createLogger('silent') })
    base = await service.start()
  })
  after(async () => {
    await service?.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('revocation: jose with our JWKS accepts a token that cbc-jwt refuses as revoked', async () => {
    const token = signToken(key, validClaims({ iat: Math.floor(Date.now() / 1000) - 600 }))
    const viaJwks = await jwtVerify(token, createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`)), { issuer: 'cbc-omega2', audience: 'cbc-api' })
    assert.equal(viaJwks.protectedHeader.kid, 'k-doc')
    const viaCbc = await service.cbc.authenticate(`Bearer ${token}`)
    assert.equal(!viaCbc.ok && viaCbc.reason, 'revoked')
  })

  it('revocation rules too: a client cut off by a rule still verifies for a JWKS consumer', async () => {
    const token = signToken(key, validClaims({ client_id: 'acme-batch', iat: Math.floor(Date.now() / 1000) - 600 }))
    const viaJwks = await jwtVerify(token, createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`)), { issuer: 'cbc-omega2', audience: 'cbc-api' })
    assert.equal(viaJwks.payload.client_id, 'acme-batch')
    const viaCbc = await service.cbc.authenticate(`Bearer ${token}`)
    assert.equal(!viaCbc.ok && viaCbc.reason, 'revoked')
  })

  it('HMAC keys are never in the JWKS', async () => {
    const body = (await (await fetch(`${base}/.well-known/jwks.json`)).json()) as { keys: Array<{ kty: string }> }
    assert.ok(body.keys.every((k) => k.kty !== 'oct'))
  })
})
