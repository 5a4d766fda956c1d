import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import { after, describe, it } from 'node:test'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { toVerificationKeyset } from '../../../src/lib/keyset/projection.js'
import { makeKey, makeKeyset, signToken } from '../../support/keys.js'
import { at, cbcJwt, decodeJwt, keysetFixture, oneLine, readJson, tempDir } from './cli.js'

const tmp = tempDir('token')
after(tmp.cleanup)
const NOW = '2026-11-25T12:00:00Z'
const NOW_S = Date.parse(NOW) / 1000

describe('cbc-jwt token issue', { concurrency: true }, () => {
  it('signs with the current key: header alg/kid/typ, claims iss aud sub client_id scope iat exp jti', async () => {
    const file = await keysetFixture(tmp.file('issue.json'), { at: '2026-11-25T00:00:00Z' })
    const r = await cbcJwt(['token', 'issue', '--sub', 'alice', '--client-id', 'billing', '--scope', 'read write', '--keyset-file', file], { env: at(NOW) })
    assert.equal(r.code, 0, r.stderr)
    const token = r.stdout.trim()
    const { header, claims } = decodeJwt(token)
    const current = readJson(file).current
    assert.deepEqual(header, { alg: 'ES256', kid: current, typ: 'JWT' })
    assert.deepEqual(
      { ...claims, jti: typeof claims.jti },
      {
        iss: 'cbc-omega2',
        aud: 'cbc-api',
        sub: 'alice',
        client_id: 'billing',
        scope: 'read write',
        iat: NOW_S,
        exp: NOW_S + 900,
        jti: 'string',
      },
    )
    // the signature is real: node:crypto checks it with the public key, independently of the CLI
    const key = loadKeyset(readJson(file)).current.verifyKey
    const [h, p, s] = token.split('.')
    assert.ok(crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(s!, 'base64url')))
  })

  it('refuses to sign with a verification keyset: ERR_NO_SIGNING_KEY on one line, exit 1, no token', async () => {
    const file = tmp.file('verification.json')
    fs.writeFileSync(file, JSON.stringify(toVerificationKeyset(readJson(await keysetFixture(tmp.file('private.json'), { at: '2026-11-25T00:00:00Z' })))))
    const r = await cbcJwt(['token', 'issue', '--sub', 'alice', '--keyset-file', file], { env: at(NOW) })
    assert.equal(r.code, 1)
    assert.equal(r.stdout, '')
    assert.match(
      r.stderr,
      /^cbc-jwt: ERR_NO_SIGNING_KEY: .*verification\.json: cannot sign: the keyset is a verification keyset \(its keys hold no private part; current k-[^)]+\); sign with the private keyset, which only the issuer should hold\n$/,
    )
  })

  it('takes iss/aud from the environment, flags win; --ttl sets exp', async () => {
    const file = await keysetFixture(tmp.file('env.json'), { alg: 'HS256' })
    const env = at(NOW, { CBC_JWT_ISSUER: 'env-iss', CBC_JWT_AUDIENCE: 'env-aud' })
    const fromEnv = decodeJwt((await cbcJwt(['token', 'issue', '--sub', 'bob', '--ttl', '1h', '--keyset-file', file], { env })).stdout.trim())
    assert.equal(fromEnv.claims.iss, 'env-iss')
    assert.equal(fromEnv.claims.aud, 'env-aud')
    assert.equal(fromEnv.claims.exp - fromEnv.claims.iat, 3600)
    assert.equal(fromEnv.claims.client_id, 'bob', 'client_id defaults to the subject')
    const flags = decodeJwt(
      (await cbcJwt(['token', 'issue', '--sub', 'bob', '--iss', 'flag-iss', '--aud', 'flag-aud', '--keyset-file', file], { env })).stdout.trim(),
    )
    assert.equal(flags.claims.iss, 'flag-iss')
    assert.equal(flags.claims.aud, 'flag-aud')
    assert.equal(flags.header.alg, 'HS256')
  })

  it('refuses a ttl over the max token TTL and a missing --sub (exit 2)', async () => {
    const file = await keysetFixture(tmp.file('ttl.json'))
    const long = await cbcJwt(['token', 'issue', '--sub', 'a', '--ttl', '2d', '--keyset-file', file])
    assert.equal(long.code, 2)
    assert.match(oneLine(long.stderr), /--ttl 2d is longer than the max token TTL 1d/)
    // Found by an audit: --ttl 25h was refused as "--ttl 1d1h is longer ...", a value nobody typed.
    const hours = await cbcJwt(['token', 'issue', '--sub', 'a', '--ttl', '25h', '--keyset-file', file])
    assert.equal(hours.code, 2)
    assert.match(oneLine(hours.stderr), /^cbc-jwt: --ttl 25h \(1d1h\) is longer than the max token TTL 1d/)
    const ok = await cbcJwt(['token', 'issue', '--sub', 'a', '--ttl', '2d', '--keyset-file', file], { env: { CBC_JWT_MAX_TOKEN_TTL: '72h' } })
    assert.equal(ok.code, 0, ok.stderr)
    const none = await cbcJwt(['token', 'issue', '--keyset-file', file])
    assert.equal(none.code, 2)
    assert.match(oneLine(none.stderr), /--sub SUBJECT is required/)
  })

  // A --scope that is not RFC 6749 scope-tokens was exit 1, "cannot sign with KID": a flag to
  // fix, not a failed signature. Checked before the keyset is read, like the other flags.
  it('refuses a --scope that is not scope-tokens separated by single spaces (exit 2), before reading the keyset', async () => {
    for (const scope of ['', 'read  write', ' read', 'read "write"', 'a\\b']) {
      const r = await cbcJwt(['token', 'issue', '--sub', 'a', '--scope', scope, '--keyset-file', tmp.file('no-such-keyset.json')])
      assert.equal(r.code, 2, `${JSON.stringify(scope)}: ${r.stderr}`)
      assert.match(oneLine(r.stderr), /^cbc-jwt: --scope must be RFC 6749 scope-tokens separated by single spaces/, JSON.stringify(scope))
      assert.equal(r.stdout, '')
    }
  })

  // Found by an audit: --client-id '' issued a token with client_id "" (exit 0) while --sub ''
  // was refused; an id that revoke --client-id / --subject cannot name (empty, over 256
  // characters, a control character) makes a token that can never be cut off by client.
  it('refuses a --client-id or --sub that revoke could not name (exit 2), before reading the keyset', async () => {
    for (const [flag, value] of [
      ['--client-id', ''],
      ['--client-id', 'a\tb'],
      ['--client-id', 'x'.repeat(257)],
      ['--sub', 'a\nb'],
      ['--sub', 'x'.repeat(257)],
    ] as const) {
      const args = flag === '--sub' ? ['--sub', value] : ['--sub', 'a', flag, value]
      const r = await cbcJwt(['token', 'issue', ...args, '--keyset-file', tmp.file('no-such-keyset.json')])
      assert.equal(r.code, 2, `${flag} ${JSON.stringify(value)}: ${r.stderr}`)
      assert.match(oneLine(r.stderr), new RegExp(`^cbc-jwt: ${flag}: an id must be 1–256 characters without control characters`), flag)
      assert.equal(r.stdout, '')
    }
    const file = await keysetFixture(tmp.file('ids.json'))
    const ok = await cbcJwt(['token', 'issue', '--sub', 'x'.repeat(256), '--client-id', 'ünïcode client', '--keyset-file', file])
    assert.equal(ok.code, 0, ok.stderr)
    assert.equal(decodeJwt(ok.stdout.trim()).claims.client_id, 'ünïcode client')
  })

  it('a token pasted into a refused --scope is not shown (exit 2), as in every other refused flag value', async () => {
    const token = `${Buffer.from('{"alg":"ES256","kid":"k"}').toString('base64url')}.${Buffer.from('{"sub":"victim"}').toString('base64url')}.c2lnbmF0dXJl`
    const r = await cbcJwt(['token', 'issue', '--sub', 'a', '--scope', `Bearer  ${token}`, '--keyset-file', tmp.file('no-such-keyset.json')])
    assert.equal(r.code, 2, r.stderr)
    assert.match(oneLine(r.stderr), /^cbc-jwt: --scope must be .*a token \(not shown\)$/)
    assert.ok(!r.stderr.includes(token.split('.')[1]!), r.stderr)
  })
})

describe('cbc-jwt token verify', { concurrency: true }, () => {
  it('prints the claims of a good token (exit 0); --json adds the kid', async () => {
    const file = await keysetFixture(tmp.file('verify.json'), { at: '2026-11-25T00:00:00Z' })
    const token = (await cbcJwt(['token', 'issue', '--sub', 'carol', '--keyset-file', file], { env: at(NOW) })).stdout.trim()
    const r = await cbcJwt(['token', 'verify', token, '--keyset-file', file], { env: at(NOW) })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).sub, 'carol')
    const json = await cbcJwt(['token', 'verify', '--json', '--keyset-file', file, '-'], { env: at(NOW), input: `${token}\n` })
    assert.equal(json.code, 0, json.stderr)
    assert.deepEqual(Object.keys(JSON.parse(json.stdout)), ['valid', 'kid', 'claims'])
    assert.equal(JSON.parse(json.stdout).kid, readJson(file).current)
  })

  // Found by an audit: "Bearer <token>" (the Authorization value a client reports) was answered
  // "token rejected: malformed", a wrong lead for a token the service accepts in that header.
  it('takes an Authorization header value too ("Bearer TOKEN"), judged as the service judges that header', async () => {
    const file = await keysetFixture(tmp.file('verify-bearer.json'), { at: '2026-11-25T00:00:00Z' })
    const token = (await cbcJwt(['token', 'issue', '--sub', 'dave', '--keyset-file', file], { env: at(NOW) })).stdout.trim()
    for (const value of [`Bearer ${token}`, `bearer  ${token}`]) {
      const r = await cbcJwt(['token', 'verify', value, '--keyset-file', file], { env: at(NOW) })
      assert.equal(r.code, 0, `${value.slice(0, 10)}: ${r.stderr}`)
      assert.equal(JSON.parse(r.stdout).sub, 'dave')
    }
    const piped = await cbcJwt(['token', 'verify', '-', '--keyset-file', file], { env: at(NOW), input: `Bearer ${token}\n` })
    assert.equal(piped.code, 0, piped.stderr)
    // Two credentials in one header are malformed, as the service answers them.
    const two = await cbcJwt(['token', 'verify', `Bearer ${token} ${token}`, '--keyset-file', file], { env: at(NOW) })
    assert.equal(two.code, 1)
    assert.match(oneLine(two.stderr), /token rejected: malformed/)
  })

  // Found black-box: a trusted issuer's token, accepted by the service, was answered only
  // "token rejected: bad_issuer" with the service's own CBC_JWT_TRUSTED_ISSUERS — a wrong lead.
  it("a trusted issuer's token: bad_issuer (offline, the keyset only), and the line says why", async () => {
    const file = await keysetFixture(tmp.file('verify-trusted.json'), { at: '2026-11-25T00:00:00Z' })
    const idp = makeKey('ES256', 'idp-1')
    const issuer = 'https://sso.example.com/realms/acme'
    const now = Math.floor(Date.parse(NOW) / 1000)
    const token = signToken(idp, { iss: issuer, aud: 'orders-api', sub: 'svc', iat: now - 60, exp: now + 600 })
    const env = at(NOW, { CBC_JWT_TRUSTED_ISSUERS: JSON.stringify([{ issuer, audience: 'orders-api' }]) })
    const r = await cbcJwt(['token', 'verify', token, '--keyset-file', file], { env })
    assert.equal(r.code, 1)
    assert.match(
      oneLine(r.stderr),
      /^cbc-jwt: token rejected: bad_issuer \(kid idp-1\); its iss is the trusted issuer https:\/\/sso\.example\.com\/realms\/acme, .*the keyset's own tokens only \(offline\)$/,
    )
    // Another issuer is not named as trusted.
    const other = signToken(idp, { iss: 'https://elsewhere.example', aud: 'orders-api', sub: 'svc', iat: now - 60, exp: now + 600 })
    const o = await cbcJwt(['token', 'verify', other, '--keyset-file', file], { env })
    assert.equal(o.code, 1)
    assert.match(oneLine(o.stderr), /^cbc-jwt: token rejected: bad_issuer \(kid idp-1\)$/)
  })

  it('prints the reason of a rejected token (exit 1): expired, bad_audience, revoked, unknown_kid, malformed', async () => {
    const file = await keysetFixture(tmp.file('reject.json'), { at: '2026-11-25T00:00:00Z' })
    const token = (await cbcJwt(['token', 'issue', '--sub', 'dave', '--keyset-file', file], { env: at(NOW) })).stdout.trim()
    const verify = (args: string[], env: Record<string, string>) => cbcJwt(['token', 'verify', ...args, '--keyset-file', file], { env })
    const expired = await verify([token], at('2026-11-25T12:16:00Z'))
    assert.equal(expired.code, 1)
    assert.match(oneLine(expired.stderr), /^cbc-jwt: token rejected: expired \(kid k-/)
    const aud = await verify(['--json', token], at(NOW, { CBC_JWT_AUDIENCE: 'other-api' }))
    assert.equal(aud.code, 1)
    assert.deepEqual(JSON.parse(aud.stdout), {
      valid: false,
      reason: 'bad_audience',
      kid: readJson(file).current,
      expected_audience: ['other-api'],
      received_audience: 'cbc-api',
    })
    assert.match(oneLine(aud.stderr), /^cbc-jwt: token rejected: bad_audience \(kid k-[^)]+\); expected other-api, received cbc-api$/)
    assert.equal((await verify(['abc'], at(NOW))).stderr, 'cbc-jwt: token rejected: malformed\n')

    assert.equal((await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file], { env: at('2026-11-25T12:00:01Z') })).code, 0)
    assert.match((await verify([token], at('2026-11-25T12:00:02Z'))).stderr, /token rejected: revoked/)
    assert.equal((await cbcJwt(['rotate', '--compromised', '--keyset-file', file], { env: at('2026-11-25T12:00:03Z') })).code, 0)
    assert.match((await verify([token], at('2026-11-25T12:00:04Z'))).stderr, /token rejected: unknown_kid/)
  })

  it('attack: hostile claims and a hostile aud never reach the terminal raw; --json keeps their values', async () => {
    const key = makeKey('ES256', 'k-hostile-claims')
    const file = tmp.file('hostile-claims.json')
    fs.writeFileSync(file, JSON.stringify(makeKeyset([key])))
    const now = Math.floor(Date.now() / 1000)
    const hostile = 'x\u009b2J\u202eevil\u007f\u001b]0;t\u0007'
    const good = signToken(key, { iss: 'cbc-omega2', aud: 'cbc-api', sub: hostile, iat: now, exp: now + 60 })
    const ok = await cbcJwt(['token', 'verify', good, '--keyset-file', file])
    assert.equal(ok.code, 0, ok.stderr)
    assert.match(ok.stdout, /^[\n\x20-\x7e]*$/)
    assert.equal(JSON.parse(ok.stdout).sub, hostile)
    const wrong = signToken(key, { iss: 'cbc-omega2', aud: [hostile, 'y'.repeat(500)], iat: now, exp: now + 60 })
    const r = await cbcJwt(['token', 'verify', '--json', wrong, '--keyset-file', file])
    assert.equal(r.code, 1)
    assert.match(r.stdout + r.stderr, /^[\n\x20-\x7e]*$/)
    assert.equal(JSON.parse(r.stdout).received_audience[0], 'x\\x9b2J\\u202eevil\\x7f\\x1b]0;t\\x07')
    assert.ok(r.stderr.length < 600, r.stderr)
  })

  it('accepts a token signed independently with node:crypto (same verifier as the server)', async () => {
    const key = makeKey('PS256', 'k-independent')
    const file = tmp.file('independent.json')
    fs.writeFileSync(file, JSON.stringify(makeKeyset([key])))
    const now = Math.floor(Date.now() / 1000)
    const token = signToken(key, { iss: 'cbc-omega2', aud: ['other', 'cbc-api'], sub: 'erin', iat: now, exp: now + 60 })
    const r = await cbcJwt(['token', 'verify', token, '--keyset-file', file])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).sub, 'erin')
    const forged = signToken(
      { ...key, alg: 'HS256', signingKey: crypto.createSecretKey(Buffer.alloc(32)) },
      { iss: 'cbc-omega2', aud: 'cbc-api', iat: now, exp: now + 60 },
    )
    assert.match((await cbcJwt(['token', 'verify', forged, '--keyset-file', file])).stderr, /token rejected: unsupported_alg/)
  })
})
