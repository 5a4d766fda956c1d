/**
 * The log lines the drill needed, captured from the real service process's stdout: on a
 * rejection the peer address, a trusted proxy's X-Forwarded-For chain (only when trusted),
 * and the client id an unverified token claims — sanitized and bounded; a sampled success
 * line with kid and client id. Never a token, never key material (redaction proven on the
 * real output, as pino's own tests do).
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { makeKey, makeKeyset, signToken, validClaims } from '../support/keys.js'
import { startService, type RunningService } from '../support/service.js'
import { waitFor } from '../support/wait.js'
import { PROCESS_LEVEL } from '../support/tier.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-log-lines-'))
const key = makeKey('ES256', 'k-log')
const keysetText = JSON.stringify(makeKeyset([key]))
const bearer = (token: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${token}`, ...extra })

describe('log lines for the drill, from the real process', { concurrency: false, ...PROCESS_LEVEL }, () => {
  let trusted: RunningService
  let untrusted: RunningService
  const sent: string[] = []
  before(async () => {
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, keysetText)
    ;[trusted, untrusted] = await Promise.all([
      startService({ env: { CBC_JWT_KEYSET_FILE: file, CBC_JWT_TRUST_PROXY: 'true', CBC_JWT_SUCCESS_LOG_SAMPLE: '0' }, timeoutMs: 40_000 }),
      startService({ env: { CBC_JWT_KEYSET_FILE: file }, timeoutMs: 40_000 }),
    ])
  })
  after(async () => {
    await Promise.all([trusted?.stop(), untrusted?.stop()])
    fs.rmSync(dir, { recursive: true, force: true })
  })

  const lastLine = (s: RunningService, match: (l: Record<string, unknown>) => boolean, what: string) => waitFor(() => s.logs().findLast(match), { what })

  it('a forger is visible: peer address and the claimed client id, marked unverified', async () => {
    const forged = signToken(makeKey('ES256', key.kid), validClaims({ client_id: 'acme-batch' }))
    sent.push(forged)
    await untrusted.get('/v1/whoami', bearer(forged, { 'x-forwarded-for': '198.51.100.9' }))
    const line = await lastLine(untrusted, (l) => l.event === 'auth_rejected' && l.reason === 'bad_signature', 'bad_signature line')
    assert.equal(line.client_id, null)
    assert.equal(line.client_id_unverified, 'acme-batch')
    assert.equal(line.remote_addr, '127.0.0.1')
    assert.equal(line.forwarded_for, undefined, 'X-Forwarded-For is not logged unless CBC_JWT_TRUST_PROXY says a proxy sets it')
  })

  it('unknown_kid and alg confusion carry the claimed id too; a verified rejection carries client_id only', async () => {
    const unknown = signToken(makeKey('ES256', 'k-nobody'), validClaims({ client_id: undefined, azp: 'partner-7' }))
    const expired = signToken(key, validClaims({ client_id: 'billing-ui', iat: 1_700_000_000, exp: 1_700_000_600 }))
    sent.push(unknown, expired)
    await untrusted.get('/v1/whoami', bearer(unknown))
    await untrusted.get('/v1/whoami', bearer(expired))
    const u = await lastLine(untrusted, (l) => l.event === 'auth_rejected' && l.reason === 'unknown_kid', 'unknown_kid line')
    assert.deepEqual([u.kid, u.client_id, u.client_id_unverified], ['k-nobody', null, 'partner-7'])
    const e = await lastLine(untrusted, (l) => l.event === 'auth_rejected' && l.reason === 'expired', 'expired line')
    assert.deepEqual([e.client_id, e.client_id_unverified], ['billing-ui', undefined])
  })

  it('another issuer is refused before its signature: its client id is only claimed', async () => {
    const stranger = signToken(key, validClaims({ iss: 'https://idp.example.com', client_id: 'partner-9' }))
    sent.push(stranger)
    await untrusted.get('/v1/whoami', bearer(stranger))
    const line = await lastLine(untrusted, (l) => l.event === 'auth_rejected' && l.reason === 'bad_issuer', 'bad_issuer line')
    assert.deepEqual([line.kid, line.client_id, line.client_id_unverified], [key.kid, null, 'partner-9'])
  })

  it('a client id read from azp or sub says so (client_id_claim): a rule by client does not match a sub', async () => {
    const old = { iat: 1_700_000_000, exp: 1_700_000_600 }
    const bySub = signToken(key, validClaims({ client_id: undefined, sub: 'svc-a', ...old }))
    const byAzp = signToken(key, validClaims({ client_id: undefined, azp: 'partner-7', sub: 'u-9', ...old }))
    sent.push(bySub, byAzp)
    await untrusted.get('/v1/whoami', bearer(bySub))
    const s = await lastLine(untrusted, (l) => l.event === 'auth_rejected' && l.client_id === 'svc-a', 'sub line')
    assert.deepEqual([s.reason, s.client_id_claim], ['expired', 'sub'])
    await untrusted.get('/v1/whoami', bearer(byAzp))
    const a = await lastLine(untrusted, (l) => l.event === 'auth_rejected' && l.client_id === 'partner-7', 'azp line')
    assert.equal(a.client_id_claim, 'azp')
    const e = await lastLine(untrusted, (l) => l.event === 'auth_rejected' && l.client_id === 'billing-ui', 'client_id line')
    assert.equal(e.client_id_claim, undefined, 'a client_id needs no word')
  })

  it('log injection: a claimed id with line breaks, JSON and escape codes is sanitized and cut to 64', async () => {
    const evil = signToken(makeKey('ES256', key.kid), validClaims({ client_id: `x\n{"event":"auth_accepted","kid":"k-log"}\u001b[2J${'y'.repeat(500)}` }))
    sent.push(evil)
    await untrusted.get('/v1/whoami', bearer(evil))
    const line = await lastLine(untrusted, (l) => l.event === 'auth_rejected' && String(l.client_id_unverified ?? '').startsWith('x_'), 'the sanitized line')
    assert.match(String(line.client_id_unverified), /^[A-Za-z0-9._:@-]{1,64}$/)
    assert.equal(String(line.client_id_unverified).length, 64)
    assert.ok(!untrusted.logs().some((l) => l.event === 'auth_accepted' && l.kid === 'k-log' && l.client_id === undefined), 'no forged line')
    for (const raw of untrusted.output().split('\n')) assert.ok(!/[\u0000-\u001f]/.test(raw), 'a control character reached the log')
  })

  it('behind a trusted proxy, the X-Forwarded-For chain is logged, each hop checked', async () => {
    const forged = signToken(makeKey('ES256', key.kid), validClaims({ client_id: 'acme-batch' }))
    sent.push(forged)
    await trusted.get('/v1/whoami', bearer(forged, { 'x-forwarded-for': '203.0.113.7, <script>, 10.0.0.2' }))
    const line = await lastLine(trusted, (l) => l.event === 'auth_rejected' && l.reason === 'bad_signature', 'bad_signature line')
    assert.deepEqual(line.forwarded_for, ['203.0.113.7', 'invalid', '10.0.0.2'])
    assert.equal(line.remote_addr, '127.0.0.1')
  })

  it('accepted tokens: the first use of each (kid, client id) pair is logged with kid, client id, iat; repeats are sampled', async () => {
    const t1 = signToken(key, validClaims({ client_id: 'acme' }))
    const t2 = signToken(key, validClaims({ client_id: 'billing-ui' }))
    sent.push(t1, t2)
    for (const t of [t1, t1, t1, t2]) assert.equal((await trusted.get('/v1/whoami', bearer(t, { 'x-forwarded-for': '203.0.113.8' }))).status, 200)
    const lines = await waitFor(
      () => {
        const ls = trusted.logs().filter((l) => l.event === 'auth_accepted')
        return ls.length >= 2 && ls
      },
      { what: 'two auth_accepted lines' },
    )
    // CBC_JWT_SUCCESS_LOG_SAMPLE=0: first uses only.
    assert.deepEqual(
      lines.map((l) => [l.kid, l.client_id, l.sampled, l.forwarded_for]),
      [
        ['k-log', 'acme', 'first_use', ['203.0.113.8']],
        ['k-log', 'billing-ui', 'first_use', ['203.0.113.8']],
      ],
    )
    assert.equal(typeof lines[0]!.iat, 'number')
    assert.equal(lines[0]!.level, 30)
  })

  it('an accepted line carries the token id (jti) the runbook revokes with `revoke --jti`; a hostile one is left out', async () => {
    const jti = '9b2c6f0e-1d7a-4e8b-a0c3-5f2d8e4b7a19'
    const plain = signToken(key, validClaims({ client_id: 'jti-client', jti }))
    const hostile = signToken(key, validClaims({ client_id: 'jti-hostile', jti: `x\u001b[2J\n${'y'.repeat(300)}` }))
    sent.push(plain, hostile)
    for (const t of [plain, hostile]) assert.equal((await trusted.get('/v1/whoami', bearer(t))).status, 200)
    const line = await lastLine(trusted, (l) => l.event === 'auth_accepted' && l.client_id === 'jti-client', 'the accepted line')
    assert.equal(line.jti, jti)
    const cut = await lastLine(trusted, (l) => l.event === 'auth_accepted' && l.client_id === 'jti-hostile', 'the hostile accepted line')
    assert.equal(cut.jti, undefined)
  })

  it('the output holds no token and no key material', async () => {
    const jwk = key.jwk as Record<string, string>
    for (const service of [trusted, untrusted]) {
      const output = service.output()
      for (const t of sent) {
        assert.ok(!output.includes(t), 'a token reached the log')
        assert.ok(!output.includes(t.split('.')[2]!), 'a signature reached the log')
      }
      for (const member of ['d', 'x', 'y']) assert.ok(!output.includes(jwk[member]!), `JWK member ${member} reached the log`)
    }
  })
})

describe('at trace level too, a request the HTTP parser refuses leaves no token in the log', { concurrency: false, ...PROCESS_LEVEL }, () => {
  let traced: RunningService
  const file = path.join(dir, 'keyset-trace.json')
  before(async () => {
    fs.mkdirSync(dir, { recursive: true })
    fs.writeFileSync(file, keysetText)
    traced = await startService({ env: { CBC_JWT_KEYSET_FILE: file, CBC_JWT_LOG_LEVEL: 'trace' }, timeoutMs: 40_000 })
  })
  after(async () => {
    await traced?.stop()
    fs.rmSync(file, { force: true })
  })

  /** Sends raw bytes and resolves with the status line of the answer. */
  const raw = (bytes: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = net.connect(traced.port, '127.0.0.1', () => socket.end(bytes))
      let answer = ''
      socket.setEncoding('utf8')
      socket.on('data', (d: string) => (answer += d))
      socket.on('error', reject)
      socket.on('close', () => resolve(answer.split('\r\n', 1)[0]!))
    })

  it("a bad header line after a valid token (400), or an oversized header (431): fastify's client-error line holds no raw request", async () => {
    const token = signToken(key, validClaims({ client_id: 'trace-client' }))
    const request = `GET /v1/auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n`
    assert.match(await raw(`${request}Bad\u0001Header: y\r\n\r\n`), / 400 /)
    assert.match(await raw(`${request}X-Filler: ${'a'.repeat(70 * 1024)}\r\n\r\n`), / 431 /)
    const lines = await waitFor(
      () => {
        const ls = traced.logs().filter((l) => (l.err as { code?: string } | undefined)?.code?.startsWith('HPE_'))
        return ls.length >= 2 && ls
      },
      { what: 'the two client-error lines' },
    )
    for (const line of lines) {
      const rawPacket = (line.err as { rawPacket?: unknown }).rawPacket
      assert.ok(rawPacket === undefined || rawPacket === '[redacted]', `the raw request reached the log: ${JSON.stringify(rawPacket).slice(0, 80)}…`)
    }
    const output = traced.output()
    // The raw request as pino would write a Buffer: its bytes, comma-separated.
    const asBytes = [...Buffer.from(token.split('.')[2]!)].join(',')
    assert.ok(!output.includes(token.split('.')[2]!) && !output.includes(asBytes), 'the token reached the log')
  })
})
