/**
 * Revocation rules on the real service: three replica processes read one keyset file, the
 * real CLI writes rules into it, and every replica answers through /v1/whoami (the library's
 * authenticate) and /v1/auth (forward auth) — tokens held in each replica's verified-token
 * cache included.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { serializeKeyset } from '../../src/lib/keyset/serialize.js'
import { at, cbcJwt, keysetFixture, readJson, tempDir } from '../ops/cli/cli.js'
import { valueOf } from '../support/metrics-text.js'
import { startService, type RunningService } from '../support/service.js'
import { waitFor } from '../support/wait.js'

const tmp = tempDir('revocation-e2e')

describe('revocation rules on three real replicas', { timeout: 300_000 }, () => {
  let file: string
  const replicas: RunningService[] = []
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
  const cli = (args: string[], env: Record<string, string> = {}, input?: string) =>
    cbcJwt([...args, '--keyset-file', file], { env: { USER: 'oncall', ...env }, ...(input !== undefined ? { input } : {}) })
  const issue = async (client: string, sub: string, agoMs: number) => {
    const r = await cli(['token', 'issue', '--sub', sub, '--client-id', client, '--ttl', '1h'], at(new Date(Date.now() - agoMs).toISOString()))
    assert.equal(r.code, 0, r.stderr)
    return r.stdout.trim()
  }
  /** What every replica answers for a token, by both routes: `200` or the reason. */
  const answers = async (token: string) =>
    (
      await Promise.all(
        replicas.flatMap((r) => [
          r.get('/v1/whoami', bearer(token)).then((x) => (x.status === 200 ? '200' : String(x.json?.reason))),
          r.get('/v1/auth', bearer(token)).then((x) => (x.status === 200 ? '200' : String(x.headers.get('x-auth-reason')))),
        ]),
      )
    ).join(' ')
  const everywhere = (answer: string) => Array(6).fill(answer).join(' ')
  /** Waits until every replica has loaded a keyset with `rules` rules. */
  const rulesLoaded = async (rules: number) => {
    for (const r of replicas) {
      await waitFor(async () => valueOf(await r.metrics(), 'cbc_jwt_revocation_rules') === rules, { timeoutMs: 15_000, what: `${rules} rules on ${r.url}` })
    }
  }

  before(async () => {
    file = await keysetFixture(tmp.file('keyset.json'), { at: new Date(Date.now() - 3_600_000).toISOString(), mode: 0o644 })
    replicas.push(
      ...(await Promise.all(
        [0, 1, 2].map(() => startService({ env: { CBC_JWT_KEYSET_FILE: file, CBC_JWT_REFRESH_INTERVAL_SECONDS: '1' }, timeoutMs: 40_000 })),
      )),
    )
  })
  after(async () => {
    await Promise.all(replicas.map((r) => r.stop()))
    tmp.cleanup()
  })

  it('client, subject and jti rules: the tokens they name are 401 revoked everywhere (cached ones too), every other token 200', async () => {
    const [stolen, sameSubjectOtherClient, otherClient, subjectsToken, oneToken, untouched] = await Promise.all([
      issue('acme-batch', 'svc-acme', 120_000),
      issue('web', 'alice', 120_000),
      issue('billing', 'svc-billing', 120_000),
      issue('mobile', 'alice', 120_000),
      issue('billing', 'svc-billing-2', 60_000),
      issue('web', 'bob', 120_000),
    ])
    const all = [stolen, sameSubjectOtherClient, otherClient, subjectsToken, oneToken, untouched]
    // Every token accepted, twice: the second answer comes from each replica's cache.
    for (const token of [...all, ...all]) assert.equal(await answers(token), everywhere('200'))
    const hits = await Promise.all(replicas.map(async (r) => valueOf(await r.metrics(), 'cbc_jwt_token_cache_hits_total')))
    assert.ok(
      hits.every((h) => h !== undefined && h >= 6),
      `cache hits: ${hits}`,
    )

    assert.equal((await cli(['revoke', '--client-id', 'acme-batch', '--issued-before', 'now'])).code, 0)
    assert.equal((await cli(['revoke', '--subject', 'alice', '--issued-before', 'now'])).code, 0)
    const jti = JSON.parse(Buffer.from(oneToken.split('.')[1]!, 'base64url').toString()).jti as string
    assert.equal((await cli(['revoke', '--jti', '-'], {}, `${jti}\n`)).code, 0)
    await rulesLoaded(3)
    for (const token of [stolen, sameSubjectOtherClient, subjectsToken, oneToken]) assert.equal(await answers(token), everywhere('revoked'))
    for (const token of [otherClient, untouched]) assert.equal(await answers(token), everywhere('200'))
    // The same client's and subject's tokens issued after the rules are accepted.
    const [acmeLater, aliceLater] = await Promise.all([issue('acme-batch', 'svc-acme', -2000), issue('web', 'alice', -2000)])
    for (const token of [acmeLater, aliceLater]) assert.equal(await answers(token), everywhere('200'))
    // Each rejection was counted and logged with the client it cut off.
    for (const r of replicas) {
      assert.ok(r.logs().some((l) => l.event === 'auth_rejected' && l.reason === 'revoked' && l.client_id === 'acme-batch'))
      assert.ok((valueOf(await r.metrics(), 'cbc_jwt_auth_failures_total', { reason: 'revoked' }) ?? 0) >= 8)
    }
  })

  it('rules survive a rotation, and drop themselves once nothing they match can be valid', async () => {
    const before = readJson(file).revocations
    assert.equal(before.length, 3)
    const rotated = await cli(['rotate'])
    assert.equal(rotated.code, 0, rotated.stderr)
    assert.deepEqual(readJson(file).revocations, before, 'a rotation keeps every rule')
    const stillStolen = await issue('acme-batch', 'svc-acme', 600_000)
    await waitFor(async () => (await replicas[0]!.get('/readyz')).json?.current === readJson(file).current, { timeoutMs: 15_000, what: 'the rotation loaded' })
    assert.equal(await answers(stillStolen), everywhere('revoked'), 'a token of the new key, issued (backdated) before the rule')

    // A day and a bit later (max token TTL 24h): the next write drops all three rules.
    const later = at(new Date(Date.now() + 25 * 3_600_000).toISOString())
    const pruned = await cli(['revoke', '--list'], later)
    assert.match(pruned.stdout, /no longer matches a valid token: the next write drops it/)
    const write = await cli(['rotate', '--auto'], later)
    assert.equal(write.code, 0, write.stderr)
    assert.equal(readJson(file).revocations, undefined)
    const event = JSON.parse(write.stderr.split('\n').find((l) => l.startsWith('{"event":"keyset_changed"'))!)
    assert.equal(event.revocations.removed_count, 3)
    await rulesLoaded(0)
  })

  it('a keyset with 10 001 rules written outside the CLI is refused by every replica; the last good keyset stays in force', async () => {
    const token = await issue('billing', 'svc', 1000)
    const good = fs.readFileSync(file, 'utf8')
    const doc = readJson(file)
    const expires_at = new Date(Date.now() + 3_600_000).toISOString()
    const rules = Array.from({ length: 10_001 }, (_, i) => ({ jti: `j-${i}`, expires_at, created_at: new Date().toISOString() }))
    fs.writeFileSync(file, serializeKeyset({ ...doc, revocations: rules }))
    for (const r of replicas) {
      await waitFor(
        () => r.logs().some((l) => l.event === 'backend_error' && typeof l.error === 'string' && l.error.includes('10001 rules; at most 10000 are allowed')),
        {
          timeoutMs: 15_000,
          what: `the refusal on ${r.url}`,
        },
      )
    }
    assert.equal(await answers(token), everywhere('200'))
    fs.writeFileSync(file, good)
  })
})
