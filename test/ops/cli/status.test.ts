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

  it('the notes change at their thresholds, not a second off: the propagation window, the 7-day SLA, 24 h before not_after', async () => {
    const file = await keysetFixture(tmp.file('edges.json'), { at: T0 })
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at('2026-11-25T01:00:00Z') })).code, 0)
    const staged = readJson(file).keys.at(-1).kid
    const stagedNote = async (iso: string) => {
      const r = await cbcJwt(['status', '--json', '--keyset-file', file], { env: at(iso) })
      return JSON.parse(r.stdout).keys.find((k: { kid: string }) => k.kid === staged).notes
    }
    // The default window is 2 x 30 s + 90 s: promotable exactly when rotate --promote accepts it.
    assert.deepEqual(await stagedNote('2026-11-25T01:02:29Z'), ['propagating, promotable in 1s'])
    assert.deepEqual(await stagedNote('2026-11-25T01:02:30Z'), ['ready to promote'])
    assert.deepEqual(await stagedNote('2026-12-02T00:59:59Z'), ['ready to promote'])
    assert.deepEqual(await stagedNote('2026-12-02T01:00:00Z'), ['past the 7-day SLA, too old to promote: rotate --stage replaces it'])
    // A rotation gives the old key 24 h: read at that instant, it already stops verifying "within 24h".
    const rotated = await keysetFixture(tmp.file('edges-rotated.json'), { at: T0 })
    const old = readJson(rotated).current
    assert.equal((await cbcJwt(['rotate', '--keyset-file', rotated], { env: at('2026-11-26T00:00:00Z') })).code, 0)
    const r = await cbcJwt(['status', '--json', '--keyset-file', rotated], { env: at('2026-11-26T00:00:00Z') })
    const out = JSON.parse(r.stdout)
    assert.deepEqual(out.keys.find((k: { kid: string }) => k.kid === old).notes, ['stops verifying in 1d'])
    assert.deepEqual(out.warnings, [`verify-only key ${old} stops verifying in 1d (2026-11-27T00:00:00Z)`])
  })

  it('the 7-day SLA is about the current key only; a key past its not_after is noted once, never as stopping', async () => {
    const file = await keysetFixture(tmp.file('old-verify-only.json'), { at: T0 })
    const old = readJson(file).current
    assert.equal((await cbcJwt(['rotate', '--keyset-file', file], { env: at('2026-12-01T23:00:00Z') })).code, 0)
    // The old key is 7d1h old and verify-only: no SLA note, no warning to rotate, exit 0.
    const r = await cbcJwt(['status', '--keyset-file', file], { env: at('2026-12-02T01:00:00Z') })
    assert.equal(r.code, 0, r.stdout)
    assert.match(r.stdout, new RegExp(`^${old} +ES256 +verify-only +2026-11-25T00:00:00Z +7d1h +2026-12-02T23:00:00Z +stops verifying in 22h$`, 'm'))
    assert.doesNotMatch(r.stdout, /7-day SLA/)
    assert.deepEqual(
      r.stdout.split('\n').filter((l) => l.startsWith('warning: ')),
      [`warning: verify-only key ${old} stops verifying in 22h (2026-12-02T23:00:00Z)`],
    )
    // Past its not_after, still listed until the next rotation prunes it: that note alone.
    const past = await cbcJwt(['status', '--json', '--keyset-file', file], { env: at('2026-12-03T00:00:00Z') })
    assert.equal(past.code, 0, past.stdout)
    const out = JSON.parse(past.stdout)
    const row = out.keys.find((k: { kid: string }) => k.kid === old)
    assert.equal(row.verifies, false)
    assert.deepEqual(row.notes, ['no longer verifies; pruned by the next rotation'])
    assert.deepEqual(out.warnings, [])
  })

  it('a current key that stops verifying within 24h is flagged: past its not_after the keyset cannot load', async () => {
    const fs = await import('node:fs')
    const file = await keysetFixture(tmp.file('current-not-after.json'), { at: T0 })
    const doc = readJson(file)
    doc.keys[0].not_after = '2026-11-27T00:00:00Z'
    fs.writeFileSync(file, JSON.stringify(doc))
    const far = await cbcJwt(['status', '--json', '--keyset-file', file], { env: at('2026-11-25T23:59:59Z') })
    assert.equal(far.code, 0, far.stderr)
    assert.deepEqual(JSON.parse(far.stdout).warnings, [])
    const r = await cbcJwt(['status', '--keyset-file', file], { env: at('2026-11-26T01:00:00Z') })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, new RegExp(`^${doc.current} +ES256 +current +2026-11-25T00:00:00Z +1d1h +2026-11-27T00:00:00Z +stops verifying in 23h$`, 'm'))
    assert.match(
      r.stdout,
      new RegExp(
        `^warning: current key ${doc.current} stops verifying in 23h \\(2026-11-27T00:00:00Z\\): past it the keyset no longer loads and nothing signs; rotate now \\(cbc-jwt rotate\\)$`,
        'm',
      ),
    )
    // Both notes of a current key also past the SLA, in one cell.
    doc.keys[0].not_after = '2026-12-02T12:00:00Z'
    fs.writeFileSync(file, JSON.stringify(doc))
    const both = await cbcJwt(['status', '--keyset-file', file], { env: at('2026-12-02T01:00:00Z') })
    assert.equal(both.code, 1)
    assert.match(both.stdout, new RegExp(`^${doc.current} +ES256 +current .* +older than the 7-day SLA; stops verifying in 11h$`, 'm'))
    const past = await cbcJwt(['status', '--keyset-file', file], { env: at('2026-12-02T12:00:00Z') })
    assert.equal(past.code, 1)
    assert.match(past.stderr, /the current key is past its not_after and cannot verify/)
  })

  it('a staged key the verification projection lacks: noted and warned, with rotate --stage to run; exit status unchanged', async () => {
    const fs = await import('node:fs')
    const file = await keysetFixture(tmp.file('unpublished.json'), { at: T0 })
    assert.equal((await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: at('2026-11-25T01:00:00Z') })).code, 0)
    const staged = readJson(file).keys.at(-1).kid
    const projection = file.replace(/\.json$/, '.public.json')
    const published = fs.readFileSync(projection, 'utf8')
    const later = at('2026-11-26T00:00:00Z') // well past the window since created_at
    const held = await cbcJwt(['status', '--json', '--keyset-file', file], { env: later })
    assert.deepEqual(JSON.parse(held.stdout).keys.at(-1).notes, ['ready to promote'], 'published: promotable')
    assert.deepEqual(JSON.parse(held.stdout).warnings, [])

    // Its write failed, or it was edited outside cbc-jwt: the projection verifiers read lacks the key.
    const doc = JSON.parse(published)
    fs.writeFileSync(projection, JSON.stringify({ ...doc, keys: doc.keys.filter((k: { kid: string }) => k.kid !== staged) }))
    const warning = `warning: staged key ${staged} is not in the verification projection (${projection} lacks it): no verifier has it, whatever its age, and rotate --promote refuses it; run cbc-jwt rotate --stage (it retires this key, which never signed, and stages a fresh one)`
    // Cut off there, as at the time status reads it: lacking from that instant, not before.
    const cutOff = (iso: string) => JSON.stringify({ ...doc, keys: doc.keys.map((k: { kid: string }) => (k.kid === staged ? { ...k, not_after: iso } : k)) })
    fs.writeFileSync(projection, cutOff('2026-11-26T00:00:01Z'))
    assert.deepEqual(JSON.parse((await cbcJwt(['status', '--json', '--keyset-file', file], { env: later })).stdout).warnings, [])
    fs.writeFileSync(projection, cutOff('2026-11-26T00:00:00Z'))
    assert.match((await cbcJwt(['status', '--keyset-file', file], { env: later })).stdout, /cuts it off \(not_after 2026-11-26T00:00:00Z\)/)
    fs.writeFileSync(projection, JSON.stringify({ ...doc, keys: doc.keys.filter((k: { kid: string }) => k.kid !== staged) }))
    const r = await cbcJwt(['status', '--keyset-file', file], { env: later })
    // The exit status is the current key's SLA, which holds: a staged key signs nothing yet.
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stderr, '')
    assert.match(r.stdout, new RegExp(`^${staged} +ES256 +staged .* +not in the verification projection, not promotable: rotate --stage replaces it$`, 'm'))
    assert.deepEqual(
      r.stdout.split('\n').filter((l) => l.startsWith('warning: ')),
      [warning],
    )
    const json = JSON.parse((await cbcJwt(['status', '--json', '--keyset-file', file], { env: later })).stdout)
    assert.deepEqual(json.warnings, [warning.slice('warning: '.length)])
    assert.equal(fs.readFileSync(file, 'utf8').includes(staged), true, 'status wrote nothing')
    // What it says to run clears it.
    assert.match((await cbcJwt(['rotate', '--promote', '--keyset-file', file], { env: later })).stderr, /refusing to promote/)
    const stage = await cbcJwt(['rotate', '--stage', '--keyset-file', file], { env: later })
    assert.equal(stage.code, 0, stage.stderr)
    const cleared = JSON.parse((await cbcJwt(['status', '--json', '--keyset-file', file], { env: at('2026-11-26T00:05:00Z') })).stdout)
    assert.deepEqual(cleared.warnings, [])
    assert.deepEqual(cleared.keys.find((k: { status: string }) => k.status === 'staged').notes, ['ready to promote'])

    // A projection that cannot be read: said, and the keyset's SLA still reported with its exit status.
    fs.rmSync(projection)
    fs.mkdirSync(projection)
    const unreadable = await cbcJwt(['status', '--keyset-file', file], { env: at('2026-11-26T00:05:00Z') })
    assert.equal(unreadable.code, 0, unreadable.stderr)
    assert.match(unreadable.stdout, /^SLA: ok/m)
    assert.match(unreadable.stdout, /^warning: could not read the verification projection to tell whether it holds the staged key: .+$/m)
    // With no key staged there is nothing to ask it: not read, nothing said.
    const none = await keysetFixture(tmp.file('unpublished-none.json'), { at: T0 })
    fs.rmSync(none.replace(/\.json$/, '.public.json'), { force: true })
    fs.mkdirSync(none.replace(/\.json$/, '.public.json'))
    const quiet = await cbcJwt(['status', '--json', '--keyset-file', none], { env: later })
    assert.equal(quiet.code, 0, quiet.stderr)
    assert.deepEqual(JSON.parse(quiet.stdout).warnings, [])
  })

  it('shows revoked_before and the time it read the keyset at (text and --json); --json is ASCII whatever the path', async () => {
    const dir = tmp.file('clé-ключ')
    ;(await import('node:fs')).mkdirSync(dir)
    const file = await keysetFixture(`${dir}/keyset.json`, { at: T0 })
    const none = await cbcJwt(['status', '--keyset-file', file], { env: at('2026-11-25T06:00:00Z') })
    assert.match(none.stdout, /^revoked_before: none$/m)
    assert.equal(JSON.parse((await cbcJwt(['status', '--json', '--keyset-file', file], { env: at('2026-11-25T06:00:00Z') })).stdout).revoked_before, null)
    assert.equal((await cbcJwt(['revoke', '--issued-before', 'now', '--keyset-file', file], { env: at('2026-11-25T06:00:00Z') })).code, 0)
    const text = await cbcJwt(['status', '--keyset-file', file], { env: at('2026-11-25T07:00:00Z') })
    assert.match(text.stdout, /^revoked_before: 2026-11-25T06:00:00Z$/m)
    const json = await cbcJwt(['status', '--json', '--keyset-file', file], { env: at('2026-11-25T07:00:00Z') })
    assert.match(json.stdout, /^[\x20-\x7e\n]*$/, 'nothing but printable ASCII')
    const out = JSON.parse(json.stdout)
    assert.equal(out.revoked_before, '2026-11-25T06:00:00Z')
    assert.equal(out.now, '2026-11-25T07:00:00Z')
    assert.equal(out.location, file)
  })

  it('reads the keyset from stdin with -', async () => {
    const file = await keysetFixture(tmp.file('stdin.json'), { at: T0 })
    const r = await cbcJwt(['status', '--json', '-'], { env: at(T0), input: (await import('node:fs')).readFileSync(file, 'utf8') })
    assert.equal(r.code, 0, r.stderr)
    assert.equal(JSON.parse(r.stdout).location, 'stdin')
  })
})
