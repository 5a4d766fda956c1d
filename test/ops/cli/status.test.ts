import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { at, cbcJwt, keysetFixture, readJson, tempDir } from './cli.js'

const tmp = tempDir('status')
after(tmp.cleanup)
const T0 = '2026-11-25T00:00:00Z'

describe('cbc-jwt status', { concurrency: true }, () => {
  it('prints a table of keys and the SLA; warns about a verify-only key expiring within 24h', async () => {
    const file = await keysetFixture(tmp.file('table.json'), { at: T0 })
    const old = readJson(file).current
    assert.equal((await cbcJwt(['rotate', '--keyset-file', file], { env: at('2026-11-27T00:00:00Z') })).code, 0)
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at('2026-11-27T12:00:00Z') })).code, 0)
    const doc = readJson(file)
    const staged = doc.keys.find((k: { kid: string; not_after?: string }) => k.kid !== doc.current && !k.not_after).kid
    const r = await cbcJwt(['status', '--keyset-file', file], { env: at('2026-11-27T12:01:00Z') })
    assert.equal(r.code, 0, r.stderr)
    const lines = r.stdout.split('\n')
    assert.match(lines[0]!, /^keyset .*table\.json at 2026-11-27T12:01:00Z$/)
    assert.match(lines[1]!, /^KID +ALG +STATUS +CREATED +AGE +NOT_AFTER +NOTES$/)
    assert.match(r.stdout, new RegExp(`${doc.current} +ES256 +current +2026-11-27T00:00:00Z +12h1m +-\\n`))
    assert.match(r.stdout, new RegExp(`${old} +ES256 +verify-only +2026-11-25T00:00:00Z +2d12h +2026-11-28T00:00:00Z +stops verifying in 11h59m`))
    assert.match(r.stdout, new RegExp(`${staged} +ES256 +staged .* propagating, promotable in 1m30s`))
    assert.match(r.stdout, /SLA: ok — current key k-\S+ is 12h1m old \(limit 7d, reached in 6d11h\)/)
    assert.match(r.stdout, new RegExp(`warning: verify-only key ${old} stops verifying in 11h59m`))
    // status promotes nothing: a window of 0 only reports what a promotion would see (rotate refuses it).
    const zero = await cbcJwt(['status', '--propagation', '0s', '--keyset-file', file], { env: at('2026-11-27T12:01:00Z') })
    assert.equal(zero.code, 0, zero.stderr)
    assert.match(zero.stdout, new RegExp(`${staged} +ES256 +staged .* ready to promote`))
  })

  it('exits 1 when the current key is older than 604800 s, and says so (text and --json)', async () => {
    const file = await keysetFixture(tmp.file('sla.json'), { at: T0 })
    const ok = await cbcJwt(['status', '--json', '--keyset-file', file], { env: at('2026-12-01T23:59:59Z') })
    assert.equal(ok.code, 0)
    assert.deepEqual(JSON.parse(ok.stdout).sla, { max_age_seconds: 604800, current_age_seconds: 604799, ok: true })
    const broken = await cbcJwt(['status', '--keyset-file', file], { env: at('2026-12-02T00:00:00Z') })
    assert.equal(broken.code, 1, broken.stderr)
    assert.equal(broken.stderr, '')
    assert.match(broken.stdout, /SLA: BROKEN — current key k-\S+ is 7d old \(limit 7d\)/)
    assert.match(broken.stdout, /older than the 7-day SLA/)
    const json = await cbcJwt(['status', '--json', '--keyset-file', file], { env: at('2026-12-03T00:00:00Z') })
    assert.equal(json.code, 1)
    const out = JSON.parse(json.stdout)
    assert.equal(out.sla.ok, false)
    assert.equal(out.keys[0].status, 'current')
    assert.equal(out.keys[0].age_seconds, 8 * 86400)
    assert.match(out.warnings[0], /over the 7-day SLA/)
  })

  it('a standby left staged past the SLA: status says so, and the playbook (stage, promote) clears the SLA', async () => {
    const file = await keysetFixture(tmp.file('old-standby.json'), { at: T0 })
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at('2026-11-25T01:00:00Z') })).code, 0)
    const old = readJson(file).keys.at(-1).kid
    const later = at('2026-12-03T00:00:00Z') // the standby is 7d23h old, the current key 8d
    const status = await cbcJwt(['status', '--keyset-file', file], { env: later })
    assert.equal(status.code, 1)
    assert.match(status.stdout, new RegExp(`${old} +ES256 +staged .* past the 7-day SLA, too old to promote: rotate --stage replaces it`))
    const promote = await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: later })
    assert.equal(promote.code, 1)
    assert.match(promote.stderr, /too old|past the 7-day key-age SLA/)
    assert.equal(readJson(file).keys.at(-1).kid, old, 'nothing written')
    const stage = await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: later })
    assert.equal(stage.code, 0, stage.stderr)
    assert.match(stage.stdout, new RegExp(`staged key ${old} waited 7d23h, past the 7-day key-age SLA: retired`))
    assert.equal((await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: at('2026-12-03T00:05:00Z') })).code, 0)
    const after = await cbcJwt(['status', '--keyset-file', file], { env: at('2026-12-03T00:05:00Z') })
    assert.equal(after.code, 0, after.stdout)
    assert.match(after.stdout, /SLA: ok/)
    assert.doesNotMatch(after.stdout, new RegExp(old), 'the old standby was retired at once and pruned by the promotion')
  })

  it('reads the keyset from stdin with -', async () => {
    const file = await keysetFixture(tmp.file('stdin.json'), { at: T0 })
    const r = await cbcJwt(['status', '--json', '-'], { env: at(T0), input: (await import('node:fs')).readFileSync(file, 'utf8') })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).location, 'stdin')
  })
})
