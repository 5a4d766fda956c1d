import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, describe, it } from 'node:test'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { createVerifier } from '../../../src/lib/verifier/verifier.js'
import { serializeKeyset } from '../../../src/lib/keyset/serialize.js'
import { signToken, type TestKey } from '../../support/keys.js'
import { at, cbcJwt, keysetFixture, oneLine, readJson, tempDir } from './cli.js'

const tmp = tempDir('revoke')
after(tmp.cleanup)

const T0 = '2026-11-25T00:00:00Z'
const plus = (iso: string, ms: number) => new Date(Date.parse(iso) + ms).toISOString().replace('.000Z', 'Z')
const MIN = 60_000
const HOUR = 60 * MIN
const NOW = plus(T0, HOUR)

let n = 0
const keysetFile = () => keysetFixture(tmp.file(`keyset-${n++}.json`), { at: T0 })
const events = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{"event":"keyset_changed"'))
    .map((l) => JSON.parse(l))

let jtis = 0
/** A token of `client` for `sub`, issued at `iat` (RFC 3339), signed with the file's current key (no process spawned: the machine is shared). */
function issue(file: string, iat: string, client: string, sub = 'user-1'): string {
  const doc = readJson(file)
  const entry = doc.keys.find((k: { kid: string }) => k.kid === doc.current)
  const key: TestKey = { kid: entry.kid, alg: entry.alg, jwk: entry.jwk, signingKey: loadKeyset(doc).current.signingKey! }
  const s = Date.parse(iat) / 1000
  return signToken(key, { iss: 'cbc-omega2', aud: 'cbc-api', sub, client_id: client, iat: s, exp: s + 7200, jti: `jti-${jtis++}` })
}

/** What the verifier says of a token at `when` against the stored keyset: `ok` or the reason. */
async function verdict(file: string, token: string, when = NOW): Promise<string> {
  const verifier = createVerifier({ issuer: 'cbc-omega2', audience: 'cbc-api', clockToleranceSeconds: 30, maxTokenBytes: 8192, now: () => Date.parse(when) })
  const result = await verifier.verify(token, loadKeyset(readJson(file), Date.parse(when)))
  return result.ok ? 'ok' : result.reason
}
const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())

describe('cbc-jwt revoke --issued-before with trusted issuers', () => {
  // Found black-box: with CBC_JWT_TRUSTED_ISSUERS set, `revoke --issued-before now` said "every
  // token issued earlier … revoked", while a trusted issuer's tokens stay valid (revoked_before is
  // the keyset's own): an operator who meant every token was not told.
  it("says a trusted issuer's tokens are not covered, and what cuts them off; nothing said without one", async () => {
    const file = await keysetFile()
    const trusted = { CBC_JWT_TRUSTED_ISSUERS: JSON.stringify([{ issuer: 'https://sso.example.com/realms/acme', audience: 'cbc-api' }]) }
    const r = await cbcJwt(['revoke', '--issued-before', plus(NOW, -MIN), '--keyset-file', file], { env: at(NOW, trusted) })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /note: the 1 trusted issuer\(s\) of CBC_JWT_TRUSTED_ISSUERS are not covered: .*--client-id or --subject\n/)
    assert.equal(readJson(file).revoked_before, plus(NOW, -MIN))
    const plain = await cbcJwt(['revoke', '--issued-before', plus(NOW, -30_000), '--keyset-file', file], { env: at(NOW) })
    assert.equal(plain.code, 0, plain.stderr)
    assert.doesNotMatch(plain.stdout, /trusted issuer/)
  })
})

describe('cbc-jwt revoke --client-id / --subject / --jti', () => {
  it("--client-id cuts off that client's tokens issued before the time, and no one else's", async () => {
    const file = await keysetFile()
    const early = plus(NOW, -10 * MIN)
    const [victim, victimLater, other] = [issue(file, early, 'acme-batch'), issue(file, plus(NOW, 1000), 'acme-batch'), issue(file, early, 'billing')]
    const r = await cbcJwt(['revoke', '--client-id', 'acme-batch', '--issued-before', 'now', '--keyset-file', file, '--reason', 'INC-9'], {
      env: at(NOW, { USER: 'dave' }),
    })
    assert.equal(r.code, 0, r.stderr)
    assert.deepEqual(readJson(file).revocations, [{ client_id: 'acme-batch', issued_before: NOW, created_at: NOW }])
    assert.equal(readJson(file).revoked_before, undefined, 'the global revocation is untouched')
    assert.match(
      r.stdout,
      new RegExp(`^tokens of one client issued before ${NOW} revoked:\\n {2}revoked {2}client_id acme-batch {2}issued before ${NOW}$`, 'm'),
    )
    const [event] = events(r.stderr)
    assert.deepEqual(
      [event.command, event.actor, event.reason, event.revocations],
      [
        'revoke --client-id',
        'dave',
        'INC-9',
        { added_count: 1, removed_count: 0, added: [{ client_id: 'acme-batch', issued_before: NOW, created_at: NOW }], removed: [] },
      ],
    )
    const later = plus(NOW, 2000)
    assert.deepEqual(await Promise.all([verdict(file, victim, later), verdict(file, victimLater, later), verdict(file, other, later)]), ['revoked', 'ok', 'ok'])
  })

  it('a time inside a second counts to its end: a token issued earlier that second is revoked; after `now` returns, a new one is not', async () => {
    // The command runs 400 ms into a second; a token issued at that second's start carries the
    // same whole-second iat as the command's instant.
    const file = await keysetFile()
    const issuedJustBefore = issue(file, NOW, 'acme-batch')
    const r = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file], { env: at(plus(NOW, 400)) })
    assert.equal(r.code, 0, r.stderr)
    const nextSecond = plus(NOW, 1000)
    assert.equal(readJson(file).revoked_before, nextSecond)
    assert.equal(await verdict(file, issuedJustBefore), 'revoked')
    assert.equal(await verdict(file, issue(file, nextSecond, 'acme-batch'), nextSecond), 'ok', 'issued once the command returned: valid')

    const rule = await cbcJwt(['revoke', '--client-id', 'billing', '--issued-before', plus(NOW, -MIN + 500), '--keyset-file', file], { env: at(NOW) })
    assert.equal(rule.code, 0, rule.stderr)
    assert.equal(readJson(file).revocations[0].issued_before, plus(NOW, -MIN + 1000))
    assert.equal(await verdict(file, issue(file, plus(NOW, -MIN), 'billing')), 'revoked')
  })

  it('a time written past the millisecond counts to its second’s end too: a token of that second’s start is revoked', async () => {
    // Date.parse drops the digits past the millisecond: …:00.0009Z read as …:00Z was stored as
    // …:00Z, and a token with iat …:00, issued before the time asked, stayed valid.
    const file = await keysetFile()
    const r = await cbcJwt(['revoke', '--issued-before', NOW.replace('Z', '.0009Z'), '--keyset-file', file], { env: at(NOW) })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(readJson(file).revoked_before, plus(NOW, 1000))
    assert.equal(await verdict(file, issue(file, NOW, 'acme-batch')), 'revoked')
  })

  it('`now` on the system clock returns only once the second it revokes to has ended: a token issued after it is valid', async () => {
    // No CBC_JWT_NOW: the wait is for the real clock. Without it the command returns inside the
    // second that revoked_before ends, and a token issued then, with that second's iat, is revoked.
    const file = await keysetFile()
    const started = Date.now()
    const r = await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file])
    const returned = Date.now()
    assert.equal(r.code, 0, r.stderr)
    const revokedBefore = Date.parse(readJson(file).revoked_before)
    assert.ok(revokedBefore >= started && revokedBefore % 1000 === 0, readJson(file).revoked_before)
    assert.ok(returned >= revokedBefore, `returned at ${new Date(returned).toISOString()}, inside the second before ${readJson(file).revoked_before}`)
  })

  it('--subject cuts off one subject across clients; --jti one token, whatever its time', async () => {
    const file = await keysetFile()
    const early = plus(NOW, -10 * MIN)
    const [alice, aliceOther, bob] = [issue(file, early, 'web', 'alice'), issue(file, early, 'mobile', 'alice'), issue(file, early, 'web', 'bob')]
    assert.equal((await cbcJwt(['revoke', '--subject', 'alice', '--issued-before', 'now', '--keyset-file', file], { env: at(NOW) })).code, 0)
    assert.deepEqual(await Promise.all([verdict(file, alice), verdict(file, aliceOther), verdict(file, bob)]), ['revoked', 'revoked', 'ok'])
    const { jti, exp } = claimsOf(bob!)
    const r = await cbcJwt(['revoke', '--jti', jti, '--expires-at', new Date(exp * 1000).toISOString(), '--keyset-file', file], { env: at(NOW) })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(await verdict(file, bob), 'revoked')
    // The second write in the same second: its rule is a second newer than the first's, so that
    // `revoke --wait` can tell a replica that has loaded it from one that has only the first.
    assert.deepEqual(readJson(file).revocations.at(-1), {
      jti,
      expires_at: new Date(exp * 1000).toISOString().replace('.000Z', 'Z'),
      created_at: plus(NOW, 1000),
    })
  })

  it('--expires-at takes the token’s exp as it comes (X-Auth-Expires: seconds since the epoch) as well as an RFC 3339 time', async () => {
    const file = await keysetFile()
    const token = issue(file, plus(NOW, -MIN), 'web', 'carol')
    const { jti, exp } = claimsOf(token)
    const r = await cbcJwt(['revoke', '--jti', jti, '--expires-at', String(exp), '--keyset-file', file], { env: at(NOW) })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(readJson(file).revocations.at(-1).expires_at, new Date(exp * 1000).toISOString().replace('.000Z', 'Z'))
    assert.equal(await verdict(file, token), 'revoked')
    const bad = await cbcJwt(['revoke', '--jti', 'x', '--expires-at', '17e8', '--keyset-file', file], { env: at(NOW) })
    assert.equal(bad.code, 2)
    assert.match(oneLine(bad.stderr), /--expires-at: "17e8" is not an RFC 3339 time .* nor a token's exp in seconds/)
  })

  // An --expires-at inside a second was cut to that second's start: the rule was dropped up to a
  // second before a token expiring at that instant stopped being valid. The rule must outlast it.
  it("--expires-at inside a second counts to that second's end, as --issued-before does", async () => {
    const file = await keysetFile()
    const inside = new Date(Date.parse(NOW) + 10 * MIN + 400).toISOString()
    const r = await cbcJwt(['revoke', '--jti', 'j-frac', '--expires-at', inside, '--keyset-file', file], { env: at(NOW) })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(readJson(file).revocations.at(-1).expires_at, new Date(Date.parse(NOW) + 10 * MIN + 1000).toISOString().replace('.000Z', 'Z'))
  })

  it('--expires-at past the longest any token alive now can live is cut to it: the rule still drops when it can match nothing', async () => {
    const file = await keysetFile()
    const r = await cbcJwt(['revoke', '--jti', 'forever', '--expires-at', '9999-12-31T23:59:59Z', '--keyset-file', file], { env: at(NOW) })
    assert.equal(r.code, 0, r.stderr)
    // now + the max token TTL (24h) + twice the clock tolerance (30 s) + 1 s: the default.
    assert.equal(readJson(file).revocations.at(-1).expires_at, plus(NOW, 24 * HOUR + MIN + 1000))
  })

  it('attack: a rule value with C1 controls and bidi overrides (a token’s sub) never reaches the terminal raw; JSON keeps it exactly', async () => {
    const file = await keysetFile()
    const hostile = 'alice\u202eecila\u009b31m\u0085'
    const r = await cbcJwt(['revoke', '--subject', hostile, '--issued-before', 'now', '--keyset-file', file], { env: at(NOW) })
    assert.equal(r.code, 0, r.stderr)
    const list = await cbcJwt(['revoke', '--list', '--keyset-file', file], { env: at(NOW) })
    const json = await cbcJwt(['revoke', '--list', '--json', '--keyset-file', file], { env: at(NOW) })
    for (const out of [r.stdout, r.stderr, list.stdout, json.stdout]) assert.match(out, /^[\n\x20-\x7e→—…]*$/, JSON.stringify(out))
    assert.match(list.stdout, /sub +"alice\\u202eecila\\u009b31m\\u0085"/)
    assert.equal(JSON.parse(json.stdout)[0].sub, hostile)
    assert.equal(events(r.stderr)[0]!.revocations.added[0].sub, hostile)
    assert.equal(readJson(file).revocations[0].sub, hostile)
  })

  it('attack: a hostile rule value named in a refusal (moving it back, a second rule for it) reaches the terminal escaped', async () => {
    const file = await keysetFile()
    const hostile = 'alice\u202eecila\u009b31m\u0085'
    assert.equal((await cbcJwt(['revoke', '--subject', hostile, '--issued-before', 'now', '--keyset-file', file], { env: at(NOW) })).code, 0)
    const back = await cbcJwt(['revoke', '--subject', hostile, '--issued-before', plus(NOW, -MIN), '--keyset-file', file], { env: at(NOW) })
    assert.equal(back.code, 1, back.stderr)
    assert.match(back.stderr, /sub "alice\\u202eecila\\u009b31m\\u0085" is already revoked/)
    const doc = readJson(file)
    doc.revocations.push({ ...doc.revocations[0], created_at: plus(NOW, 1000) })
    fs.writeFileSync(file, serializeKeyset(doc))
    const validate = await cbcJwt(['keyset', 'validate', '--keyset-file', file], { env: at(NOW) })
    assert.equal(validate.code, 1, validate.stderr)
    assert.match(`${validate.stdout}${validate.stderr}`, /a second rule for sub "alice\\u202eecila\\u009b31m\\u0085"/)
    for (const out of [back.stdout, back.stderr, validate.stdout, validate.stderr]) assert.match(out, /^[\n\x20-\x7e→—…✓✗–]*$/, JSON.stringify(out))
  })

  it('--jti - reads ids from stdin (a list from the logs); without --expires-at the rule outlasts any live token', async () => {
    const file = await keysetFile()
    const ids = ['tok-1', '  tok-2  ', '', 'tok-1', 'tok-3']
    const many = Array.from({ length: 150 }, (_, i) => `bulk-${i}`)
    const r = await cbcJwt(['revoke', '--jti', '-', '--keyset-file', file], {
      env: at(NOW, { CBC_JWT_MAX_TOKEN_TTL: '2h' }),
      input: `${[...ids, ...many].join('\n')}\n`,
    })
    assert.equal(r.code, 0, r.stderr)
    const rules = readJson(file).revocations
    assert.deepEqual(
      rules.slice(0, 3).map((x: { jti: string }) => x.jti),
      ['tok-1', 'tok-2', 'tok-3'],
    )
    assert.equal(rules.length, 153)
    const { revocations } = events(r.stderr)[0]
    assert.deepEqual(
      [revocations.added_count, revocations.added.length, revocations.added[99].jti],
      [153, 100, 'bulk-96'],
      'the audit line counts them all, names the first 100',
    )
    // now + 2h max TTL + 2 × 30 s tolerance + 1 s rounding
    assert.equal(rules[0].expires_at, plus(NOW, 2 * HOUR + 61_000))
    const bothStdin = await cbcJwt(['revoke', '--jti', '-', '-'], { env: at(NOW), input: 'tok-1\n' })
    assert.equal(bothStdin.code, 2)
    assert.match(oneLine(bothStdin.stderr), /the keyset cannot come from stdin too/)
    const control = await cbcJwt(['revoke', '--jti', '-', '--keyset-file', file], { env: at(NOW), input: 'ok\nbad\u0007id\n' })
    assert.equal(control.code, 2)
    assert.equal(oneLine(control.stderr), 'cbc-jwt: --jti -: line 2 is not a token id (1–256 characters without control characters)')
  })

  it('--dry-run shows how many rules and which, writes nothing; --list prints the rules in force', async () => {
    const file = await keysetFile()
    const bytes = fs.readFileSync(file)
    const many = Array.from({ length: 25 }, (_, i) => `tok-${i}`).join('\n')
    const dry = await cbcJwt(['revoke', '--jti', '-', '--dry-run', '--keyset-file', file], { env: at(NOW), input: many })
    assert.equal(dry.code, 0, dry.stderr)
    assert.deepEqual(fs.readFileSync(file), bytes)
    assert.match(dry.stdout, /^dry run, nothing written — 25 tokens revoked by jti:$/m)
    assert.equal(dry.stdout.match(/^ {2}revoked {2}jti tok-\d+ {2}until /gm)?.length, 20)
    assert.match(dry.stdout, /^ {2}… and 5 more rule\(s\) revoked \(cbc-jwt revoke --list shows the rules in force\)$/m)
    assert.match(dry.stdout, /^ {2}note: 25 token id\(s\) newly revoked$/m)
    assert.deepEqual(events(dry.stderr), [], 'a dry run records nothing')

    await cbcJwt(['revoke', '--client-id', 'acme batch', '--issued-before', 'now', '--keyset-file', file], { env: at(NOW) })
    await cbcJwt(['revoke', '--subject', 'ü-ser', '--issued-before', 'now', '--keyset-file', file], { env: at(NOW) })
    const list = await cbcJwt(['revoke', '--list', '--keyset-file', file], { env: at(NOW) })
    assert.equal(list.code, 0, list.stderr)
    assert.deepEqual(
      list.stdout.split('\n').map((l) => l.replace(/ +/g, ' ')),
      [
        'KIND VALUE REVOKES CREATED',
        `client_id "acme batch" issued before ${NOW} ${NOW}`,
        // Outside printable ASCII, escaped like any text that may come from a token.
        // Written in the same second as the first: created a second later (each write's rules are newer).
        `sub "\\u00fc-ser" issued before ${NOW} ${plus(NOW, 1000)}`,
        `2 rule(s) in force (at most 10000); revoked_before none`,
        '',
      ],
    )
    const json = await cbcJwt(['revoke', '--list', '--json', '--keyset-file', file], { env: at(NOW) })
    assert.deepEqual(
      JSON.parse(json.stdout).map((r: Record<string, string>) => r.client_id ?? r.sub),
      ['acme batch', 'ü-ser'],
    )
    const mixed = await cbcJwt(['revoke', '--list', '--client-id', 'x', '--keyset-file', file], { env: at(NOW) })
    assert.equal(mixed.code, 2)
    assert.match(oneLine(mixed.stderr), /--issued-before has no effect with --list|--client-id has no effect with --list/)
  })

  it('--list marks the rules the next write drops with the max token TTL it is given, by flag as by environment', async () => {
    const file = await keysetFile()
    const early = plus(NOW, -2 * HOUR)
    assert.equal((await cbcJwt(['revoke', '--client-id', 'old', '--issued-before', early, '--keyset-file', file], { env: at(NOW) })).code, 0)
    const spent = /^client_id +old +issued before \S+ +\S+ +\(no longer matches a valid token: the next write drops it\)$/m
    const byDefault = await cbcJwt(['revoke', '--list', '--keyset-file', file], { env: at(NOW) })
    assert.doesNotMatch(byDefault.stdout, spent, 'within 24h: a token issued before it may still be valid')
    const byEnv = await cbcJwt(['revoke', '--list', '--keyset-file', file], { env: at(NOW, { CBC_JWT_MAX_TOKEN_TTL: '1h' }) })
    assert.match(byEnv.stdout, spent)
    const byFlag = await cbcJwt(['revoke', '--list', '--max-token-ttl', '1h', '--keyset-file', file], { env: at(NOW) })
    assert.equal(byFlag.code, 0, byFlag.stderr)
    assert.match(byFlag.stdout, spent)
  })

  it("a trusted issuer's longer token lifetime keeps a rule as long as its tokens live (CBC_JWT_TRUSTED_ISSUERS, as the service has it)", async () => {
    const file = await keysetFile()
    const early = plus(NOW, -2 * HOUR)
    assert.equal((await cbcJwt(['revoke', '--client-id', 'partner', '--issued-before', early, '--keyset-file', file], { env: at(NOW) })).code, 0)
    const spent = /^client_id +partner +.*the next write drops it\)$/m
    const issuers = JSON.stringify([
      { issuer: 'https://id.partner.example/', audience: 'cbc-api', jwks_uri: 'https://id.partner.example/jwks', max_token_lifetime_seconds: 30 * 86400 },
    ])
    // Our own tokens live 1h: alone, the rule is spent; a partner's token lives 30 days: it is not.
    const ours = await cbcJwt(['revoke', '--list', '--keyset-file', file], { env: at(NOW, { CBC_JWT_MAX_TOKEN_TTL: '1h' }) })
    assert.match(ours.stdout, spent)
    const withPartner = { CBC_JWT_MAX_TOKEN_TTL: '1h', CBC_JWT_TRUSTED_ISSUERS: issuers }
    const listed = await cbcJwt(['revoke', '--list', '--keyset-file', file], { env: at(NOW, withPartner) })
    assert.equal(listed.code, 0, listed.stderr)
    assert.doesNotMatch(listed.stdout, spent)
    // A write (another revoke) keeps it, and --jti's default expiry covers the partner's lifetime.
    const write = await cbcJwt(['revoke', '--jti', 'one', '--keyset-file', file], { env: at(NOW, withPartner) })
    assert.equal(write.code, 0, write.stderr)
    const rules = readJson(file).revocations
    assert.ok(
      rules.some((r: { client_id?: string }) => r.client_id === 'partner'),
      JSON.stringify(rules),
    )
    assert.equal(rules.find((r: { jti?: string }) => r.jti === 'one').expires_at, plus(NOW, 30 * 24 * HOUR + MIN + 1000))
  })

  it("moving a client's time back is refused (it would un-revoke) unless --force; a later time moves it forward", async () => {
    const file = await keysetFile()
    assert.equal((await cbcJwt(['revoke', '--client-id', 'c', '--issued-before', 'now', '--keyset-file', file], { env: at(NOW) })).code, 0)
    const bytes = fs.readFileSync(file)
    const back = await cbcJwt(['revoke', '--client-id', 'c', '--issued-before', T0, '--keyset-file', file], { env: at(NOW) })
    assert.equal(back.code, 1)
    assert.match(oneLine(back.stderr), /client_id "c" is already revoked for tokens issued before .*would accept tokens that are revoked now \(use --force/)
    assert.deepEqual(fs.readFileSync(file), bytes)
    const later = plus(NOW, MIN)
    const forward = await cbcJwt(['revoke', '--client-id', 'c', '--issued-before', 'now', '--keyset-file', file], { env: at(later) })
    assert.equal(forward.code, 0, forward.stderr)
    assert.deepEqual(readJson(file).revocations, [{ client_id: 'c', issued_before: later, created_at: later }])
    assert.deepEqual(events(forward.stderr)[0].revocations.removed, [{ client_id: 'c', issued_before: NOW, created_at: NOW }])
  })

  it('rules drop themselves on the next write once nothing they match can be valid (any write: a rotation too)', async () => {
    const file = await keysetFile()
    const env = (when: string) => at(when, { CBC_JWT_MAX_TOKEN_TTL: '1h' })
    await cbcJwt(['revoke', '--client-id', 'c', '--issued-before', 'now', '--keyset-file', file], { env: env(NOW) })
    await cbcJwt(['revoke', '--jti', 'j', '--expires-at', plus(NOW, 10 * MIN), '--keyset-file', file], { env: env(NOW) })
    // 10 min + 30 s tolerance: the jti rule can still match at +10m30s, not after.
    const kept = await cbcJwt(['revoke', '--subject', 's1', '--issued-before', 'now', '--keyset-file', file], { env: env(plus(NOW, 10 * MIN + 30_000)) })
    assert.deepEqual(events(kept.stderr)[0].revocations.removed, [])
    const dropped = await cbcJwt(['revoke', '--subject', 's2', '--issued-before', 'now', '--keyset-file', file], { env: env(plus(NOW, 10 * MIN + 31_000)) })
    assert.deepEqual(
      events(dropped.stderr)[0].revocations.removed.map((r: Record<string, string>) => r.jti),
      ['j'],
    )
    assert.match(dropped.stdout, /^ {2}dropped {2}jti j {2}until /m)
    // The client rule: issued_before + 1h max TTL + 2 × 30 s. A rotation after that drops it.
    const rotated = await cbcJwt(['rotate', '--keyset-file', file], { env: env(plus(NOW, HOUR + 61_000)) })
    assert.equal(rotated.code, 0, rotated.stderr)
    assert.deepEqual(
      events(rotated.stderr)[0].revocations.removed.map((r: Record<string, string>) => r.client_id),
      ['c'],
    )
    assert.deepEqual(
      readJson(file).revocations.map((r: Record<string, string>) => r.sub),
      ['s1', 's2'],
    )
  })

  it(`10 000 rules hold; the command that would make 10 001 exits 1, says so, and writes nothing`, async () => {
    const file = await keysetFile()
    const ids = Array.from({ length: 9_990 }, (_, i) => `id-${i}`)
    const expires_at = plus(NOW, 24 * HOUR)
    fs.writeFileSync(file, serializeKeyset({ ...readJson(file), revocations: ids.map((jti) => ({ jti, expires_at, created_at: NOW })) }))
    const more = Array.from({ length: 200 }, (_, i) => `more-${i}`).join('\n')
    const ten = await cbcJwt(['revoke', '--jti', '-', '--keyset-file', file], { env: at(NOW), input: `id-0\n${more.split('\n').slice(0, 10).join('\n')}` })
    assert.equal(ten.code, 0, ten.stderr)
    assert.equal(readJson(file).revocations.length, 10_000)
    const bytes = fs.readFileSync(file)
    const over = await cbcJwt(['revoke', '--client-id', 'one-more', '--issued-before', 'now', '--keyset-file', file], { env: at(NOW) })
    assert.equal(over.code, 1)
    assert.equal(
      oneLine(over.stderr),
      'cbc-jwt: refusing to write 10001 revocation rules: 10001 rules; at most 10000 are allowed (revoke a whole client or subject rather than its tokens one jti at a time); nothing was written',
    )
    assert.deepEqual(fs.readFileSync(file), bytes)
  })

  const TOKEN_LIKE = `${Buffer.from('{"alg":"ES256","kid":"k"}').toString('base64url')}.${Buffer.from('{"jti":"j-1"}').toString('base64url')}.c2ln`
  it('refuses what names nothing or two things, and ids no rule can hold (exit 2)', async () => {
    const file = await keysetFile()
    const cases: Array<[string[], RegExp]> = [
      [['--client-id', 'a', '--subject', 'b', '--issued-before', 'now'], /choose one of --client-id, --subject per command/],
      [['--client-id', 'a'], /--client-id needs --issued-before TIME\|now/],
      [['--jti', 'a', '--issued-before', 'now'], /--issued-before has no effect with --jti/],
      [['--jti', 'a', '--force'], /--force has no effect with --jti/],
      [['--client-id', 'a', '--expires-at', NOW, '--issued-before', 'now'], /--expires-at has no effect with --client-id/],
      [['--client-id', 'x'.repeat(257), '--issued-before', 'now'], /--client-id: an id must be 1–256 characters without control characters/],
      [['--jti', 'a', '--expires-at', T0], /--expires-at 2026-11-25T00:00:00Z is past/],
      // Found by an audit: a whole token given as --jti was "an id must be 1–256 characters",
      // no hint that the rule wants the token's jti claim.
      [['--jti', `${TOKEN_LIKE}`], /^cbc-jwt: --jti: a token \(not shown\), not a token id: give its jti claim \(cbc-jwt token verify - prints the claims\)$/],
    ]
    for (const [args, expected] of cases) {
      const r = await cbcJwt(['revoke', ...args, '--keyset-file', file], { env: at(NOW) })
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
      assert.match(oneLine(r.stderr), expected)
      assert.ok(!r.stderr.includes(TOKEN_LIKE.split('.')[1]!), 'the token is never shown')
    }
    // From stdin, a line that is a whole token gets the same hint, by its line number.
    const piped = await cbcJwt(['revoke', '--jti', '-', '--keyset-file', file], { env: at(NOW), input: `j-0\n${TOKEN_LIKE}\n` })
    assert.equal(piped.code, 2, piped.stderr)
    assert.match(oneLine(piped.stderr), /^cbc-jwt: --jti -: line 2 is a token, not a token id: give its jti claim/)
  })
})
