// "An API adopts cbc-jwt in minutes": a fresh Fastify app and fresh Express apps (5 and 4)
// install the packed tarball, paste the example of docs/adopting.md (≤ 5 lines of cbc-jwt
// code), and get the whole behaviour.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { KubeletVolume } from '../support/kubelet-volume.js'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { parseExposition, valueOf } from '../support/metrics-text.js'
import { exampleBlock, installPackedTarball, runApp, type RunningApp } from '../support/packed-app.js'
import { rawRequest } from '../support/raw-http.js'
import { PROJECT_ROOT } from '../support/service.js'

const ADOPTING = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/adopting.md'), 'utf8')
const README = fs.readFileSync(path.join(PROJECT_ROOT, 'README.md'), 'utf8')
const ISS = 'adopter-issuer'
const AUD = 'orders-api'

/** Lines of the example that are cbc-jwt code: its imports, registration, hooks and auth reads. */
function cbcJwtLines(code: string): string[] {
  return code.split('\n').filter((l) => /cbc-jwt|cbcJwt|authenticate|requireScope|\.auth\b/.test(l))
}

const APPS = [
  { name: 'Fastify 5', example: 'fastify', express4: false },
  { name: 'Express 5', example: 'express', express4: false },
  { name: 'Express 4', example: 'express', express4: true },
] as const

for (const spec of APPS) {
  describe(`a fresh ${spec.name} app from the packed tarball`, () => {
    const key = makeKey('ES256', 'k-adopt')
    const code = exampleBlock(ADOPTING, spec.example)
    let dir: string
    let volume: KubeletVolume
    let app: RunningApp

    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-adopt-'))
      installPackedTarball(dir, { express4: spec.express4 })
      volume = new KubeletVolume(path.join(dir, 'secret'))
      volume.writeKeyset(makeKeyset([key]))
      fs.writeFileSync(path.join(dir, 'app.js'), code)
      app = await runApp(dir, ['app.js'], { CBC_JWT_KEYSET_FILE: volume.file(), CBC_JWT_ISSUER: ISS, CBC_JWT_AUDIENCE: AUD }, '/orders')
    })
    after(async () => {
      await app?.stop()
      if (dir) fs.rmSync(dir, { recursive: true, force: true })
    })

    const token = (claims: Record<string, unknown> = {}, k = key) => `Bearer ${signToken(k, validClaims(claims, { iss: ISS, aud: AUD }))}`
    const get = async (authorization?: string) => {
      const res = await fetch(`${app.base}/orders`, { headers: authorization ? { authorization } : {}, signal: AbortSignal.timeout(10_000) })
      return { status: res.status, headers: res.headers, json: (await res.json()) as any }
    }

    it('takes at most 5 lines of cbc-jwt code, and the README shows the same example', () => {
      const lines = cbcJwtLines(code)
      assert.ok(lines.length <= 5, lines.join('\n'))
      assert.ok(README.includes(code.trim()), 'the README adoption section differs from docs/adopting.md')
    })

    it('a valid token with the scope → 200 with the caller', async () => {
      const res = await get(token({ sub: 'alice', scope: 'orders:read' }))
      assert.equal(res.status, 200)
      assert.deepEqual(res.json, { sub: 'alice' })
    })

    it('no token → 401 missing, WWW-Authenticate: Bearer', async () => {
      const res = await get()
      assert.equal(res.status, 401)
      assert.equal(res.headers.get('www-authenticate'), 'Bearer')
      assert.deepEqual(res.json, { error: 'invalid_token', reason: 'missing' })
    })

    it('a token without the scope → 403 insufficient_scope', async () => {
      const res = await get(token({ scope: 'orders:write' }))
      assert.equal(res.status, 403)
      assert.equal(res.headers.get('www-authenticate'), 'Bearer error="insufficient_scope"')
    })

    it('expired, Basic, garbled, oversized → 401 with their reasons, never a 500', async () => {
      const cases: Array<[string, string]> = [
        [token({ exp: Math.floor(Date.now() / 1000) - 3600 }), 'expired'],
        ['Basic dXNlcjpwYXNz', 'missing'],
        ['Bearer not a token', 'malformed'],
        [token({ padding: 'x'.repeat(10_000) }), 'too_large'],
      ]
      for (const [authorization, reason] of cases) {
        const res = await get(authorization)
        assert.equal(res.status, 401, reason)
        assert.equal(res.json.reason, reason)
      }
    })

    it('request smuggling: two Authorization headers → 401 malformed', async () => {
      const t = token({ scope: 'orders:read' })
      const res = await rawRequest(app.port, ['GET /orders HTTP/1.1', 'Host: x', `Authorization: ${t}`, `Authorization: ${t}`])
      assert.equal(res.status, 401)
      assert.equal(JSON.parse(res.body).reason, 'malformed')
    })

    it('a key added by a rotation is accepted on its first token (unknown-kid re-read)', async () => {
      const next = makeKey('ES256', 'k-adopt-next')
      volume.writeKeyset(makeKeyset([key, next]))
      const res = await get(token({ scope: 'orders:read' }, next))
      assert.equal(res.status, 200)
    })
  })
}

describe('the metrics land on the adopter’s default prom-client registry', () => {
  it('a Fastify app serving register.metrics() exports the auth failure counter', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-adopt-metrics-'))
    let app: RunningApp | undefined
    try {
      installPackedTarball(dir)
      const volume = new KubeletVolume(path.join(dir, 'secret'))
      volume.writeKeyset(makeKeyset([makeKey('ES256', 'k-m')]))
      fs.writeFileSync(
        path.join(dir, 'app.js'),
        `${exampleBlock(ADOPTING, 'fastify').replace(/await app\.listen[^\n]*/, '')}
import { register } from 'prom-client'
app.get('/metrics', async (_req, reply) => reply.type(register.contentType).send(await register.metrics()))
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
`,
      )
      app = await runApp(dir, ['app.js'], { CBC_JWT_KEYSET_FILE: volume.file() }, '/metrics')
      await fetch(`${app.base}/orders`)
      const expo = parseExposition(await (await fetch(`${app.base}/metrics`)).text())
      assert.equal(valueOf(expo, 'cbc_jwt_auth_failures_total', { reason: 'missing' }), 1)
      assert.equal(valueOf(expo, 'cbc_jwt_keys_loaded'), 1)
    } finally {
      await app?.stop()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
