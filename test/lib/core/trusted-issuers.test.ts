// A trusted issuer through the whole library: createCbcJwt reads its keys by
// discovery over TLS, re-reads them once for a kid it lacks, logs rejections with the issuer,
// and the Fastify plugin's requireScope reads the issuer's scope claim.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import express from 'express'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import cbcJwt from '../../../src/adapters/fastify/index.js'
import { buildApp } from '../../../src/server/app.js'
import { createLogger } from '../../../src/server/logger.js'
import { cbcJwt as expressCbcJwt, requireScope } from '../../../src/adapters/express/index.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../../support/keys.js'
import { startJwksServer, type JwksServer } from '../../support/jwks-server.js'
import { makeTestTls, type TestTls } from '../../support/test-tls.js'
import { captureLogger, coreOn, tempKeyset } from './fixtures.js'

describe('createCbcJwt with a trusted issuer', () => {
  let tls: TestTls
  let idp: JwksServer
  const idpKey = makeKey('ES256', 'idp-1')
  const own = makeKey('ES256', 'own-1')
  const ks = tempKeyset(makeKeyset([own]))
  const claims = (extra: Record<string, unknown> = {}) => validClaims({ aud: 'orders-api', ...extra }, { iss: idp.issuer })

  before(async () => {
    tls = makeTestTls()
    idp = await startJwksServer(tls, [idpKey])
  })
  after(async () => {
    await idp.close()
    ks.cleanup()
  })

  it('accepts its tokens, re-reads its keys once for a new kid, logs rejections with the issuer', async () => {
    const parts = coreOn(ks.file, {
      trustedIssuers: [{ issuer: idp.issuer, audience: 'orders-api', unknown_kid_cooldown_seconds: 60 }],
      trustedIssuersCa: tls.ca,
    })
    await parts.cbc.start()
    try {
      const ok = await parts.cbc.authenticate(`Bearer ${signToken(idpKey, claims())}`)
      assert.equal(ok.ok, true)
      assert.equal((await parts.cbc.authenticate(`Bearer ${signToken(own, validClaims())}`)).ok, true)
      // The issuer rotates: a token of its new key is accepted at once, through one read.
      const rotated = makeKey('ES256', 'idp-2')
      idp.publish([rotated, idpKey])
      idp.requests.length = 0
      assert.equal((await parts.cbc.authenticate(`Bearer ${signToken(rotated, claims())}`)).ok, true)
      assert.deepEqual(idp.requests, ['/jwks'])
      // A forged kid: no read within the cooldown, unknown_kid, logged with the configured issuer.
      const forged = await parts.cbc.authenticate(`Bearer ${signToken(makeKey('ES256', 'forged'), claims())}`)
      assert.equal(forged.ok ? 'ok' : forged.reason, 'unknown_kid')
      assert.deepEqual(idp.requests, ['/jwks'])
      const line = parts.lines.find((l) => l.event === 'auth_rejected')
      assert.equal(line?.issuer, idp.issuer)
      // Our JWKS stays ours; /v1/keys lists theirs with the issuer.
      assert.deepEqual(
        parts.cbc.jwks().keys.map((k) => k.kid),
        ['own-1'],
      )
      assert.deepEqual(
        parts.cbc.keys()!.keys.map((k) => `${k.issuer} ${k.kid} ${k.status}`),
        ['cbc-omega2 own-1 current', `${idp.issuer} idp-2 trusted`, `${idp.issuer} idp-1 trusted`],
      )
    } finally {
      await parts.cbc.close()
    }
  })

  it('re-reads for a new kid in base64 with + / = (AWS Cognito kids), and logs that kid', async () => {
    const parts = coreOn(ks.file, {
      trustedIssuers: [{ issuer: idp.issuer, audience: 'orders-api', unknown_kid_cooldown_seconds: 60 }],
      trustedIssuersCa: tls.ca,
    })
    await parts.cbc.start()
    try {
      const rotated = makeKey('ES256', 'nKhKbqVgUsRwzo/BB1ZyhE8E7+JBLGLDFLN1Txd06P6E=')
      idp.publish([rotated, idpKey])
      idp.requests.length = 0
      const result = await parts.cbc.authenticate(`Bearer ${signToken(rotated, claims())}`)
      assert.equal(result.ok ? 'ok' : result.reason, 'ok')
      assert.deepEqual(idp.requests, ['/jwks'])
      // A kid the issuer does not publish is named in the rejection line, as its keys' kids are.
      await parts.cbc.authenticate(`Bearer ${signToken(makeKey('ES256', 'forged+/='), claims())}`)
      assert.equal(parts.lines.find((l) => l.event === 'auth_rejected')?.kid, 'forged+/=')
    } finally {
      await parts.cbc.close()
    }
  })

  it("the service's /v1/whoami shows iat null for an issuer's token without iat, as any claim it lacks", async () => {
    const parts = coreOn(ks.file, {
      trustedIssuers: [{ issuer: idp.issuer, audience: 'orders-api', allow_missing_iat: true }],
      trustedIssuersCa: tls.ca,
    })
    await parts.cbc.start()
    const app = buildApp({ cbc: parts.cbc, keyring: parts.keyring, metrics: parts.metrics, logger: createLogger('silent') })
    try {
      const { iat: _iat, ...withoutIat } = claims({ sub: 'partner' })
      const res = await app.inject({ url: '/v1/whoami', headers: { authorization: `Bearer ${signToken(idpKey, withoutIat)}` } })
      assert.equal(res.statusCode, 200, res.body)
      assert.deepEqual(res.json(), { sub: 'partner', client_id: withoutIat.client_id, scope: withoutIat.scope, kid: 'idp-1', iat: null, exp: withoutIat.exp })
    } finally {
      await app.close()
      await parts.cbc.close()
    }
  })

  it("the Fastify plugin's requireScope reads the issuer's scope_claim", async () => {
    const { logger } = captureLogger()
    const app = Fastify()
    await app.register(cbcJwt, {
      keysetFile: ks.file,
      env: {},
      registry: new Registry(),
      logger,
      trustedIssuers: [{ issuer: idp.issuer, audience: 'orders-api', scope_claim: 'permissions' }],
      trustedIssuersCa: tls.ca,
    })
    app.get('/orders', { onRequest: [app.authenticate, app.requireScope('orders:read')] }, async (request) => ({ scope: request.auth?.claims.scope }))
    await app.ready()
    try {
      const granted = await app.inject({
        url: '/orders',
        headers: { authorization: `Bearer ${signToken(idpKey, claims({ scope: 'openid', permissions: ['orders:read'] }))}` },
      })
      assert.equal(granted.statusCode, 200, granted.body)
      assert.deepEqual(granted.json(), { scope: ['orders:read'] })
      const refused = await app.inject({
        url: '/orders',
        headers: { authorization: `Bearer ${signToken(idpKey, claims({ scope: 'orders:read', permissions: [] }))}` },
      })
      assert.equal(refused.statusCode, 403)
    } finally {
      await app.close()
    }
  })

  it("the Express middleware's requireScope reads the issuer's scope_claim too", async () => {
    const { logger } = captureLogger()
    const mw = expressCbcJwt({
      keysetFile: ks.file,
      env: {},
      registry: new Registry(),
      logger,
      trustedIssuers: [{ issuer: idp.issuer, audience: 'orders-api', scope_claim: 'scp' }],
      trustedIssuersCa: tls.ca,
    })
    const app = express()
    app.use(mw)
    app.get('/orders', requireScope('orders.read'), (req, res) => void res.json({ client: req.auth?.claims.azp }))
    const server = app.listen(0, '127.0.0.1')
    await new Promise<void>((resolve) => server.once('listening', () => resolve()))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders`
    try {
      const ask = async (extra: Record<string, unknown>) =>
        fetch(url, { headers: { authorization: `Bearer ${signToken(idpKey, claims({ azp: 'partner-app', ...extra }))}` } })
      const granted = await ask({ scp: 'orders.read orders.write' })
      assert.equal(granted.status, 200)
      assert.deepEqual(await granted.json(), { client: 'partner-app' })
      assert.equal((await ask({ scope: 'orders.read' })).status, 403)
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await mw.cbc.close()
    }
  })

  it("trustedIssuersCa adds to Node's CA store, as NODE_EXTRA_CA_CERTS does: an issuer the store trusts still loads", async () => {
    // Two issuers: one behind the CA given in code, one behind a CA Node's store already holds
    // (NODE_EXTRA_CA_CERTS, read by Node at start: hence a process of its own).
    const otherTls = makeTestTls()
    const otherKey = makeKey('ES256', 'other-1')
    const other = await startJwksServer(otherTls, [otherKey])
    const script = path.join(otherTls.dir, 'two-cas.mts')
    const index = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/index.ts')
    fs.writeFileSync(
      script,
      `import { createCbcJwt } from ${JSON.stringify(index)}
const cbc = createCbcJwt({
  keysetFile: process.env.KEYSET!, env: {}, logger: false,
  trustedIssuers: [{ issuer: process.env.ISSUER_A!, audience: 'x' }, { issuer: process.env.ISSUER_B!, audience: 'x' }],
  trustedIssuersCa: process.env.CA_A!,
})
await cbc.start()
console.log(JSON.stringify([...new Set(cbc.keys()!.keys.map((k) => k.issuer))]))
await cbc.close()
`,
    )
    try {
      // Not spawnSync: the issuers answer from this process's event loop.
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], {
        env: {
          PATH: process.env.PATH ?? '',
          NODE_EXTRA_CA_CERTS: otherTls.caFile,
          KEYSET: ks.file,
          ISSUER_A: idp.issuer,
          ISSUER_B: other.issuer,
          CA_A: tls.ca,
        },
        encoding: 'utf8',
        timeout: 60_000,
      })
      assert.deepEqual(JSON.parse(stdout.trim()), ['cbc-omega2', idp.issuer, other.issuer])
    } finally {
      await other.close()
    }
  })
})
