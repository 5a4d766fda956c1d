import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, describe, it } from 'node:test'
import { at, cbcJwt, keysetFixture, readJson, tempDir } from './cli.js'

const tmp = tempDir('audit')
after(tmp.cleanup)
const T0 = '2026-11-25T00:00:00Z'
const LATER = '2026-11-25T01:00:00Z'

/** The keyset_changed lines of a run's stderr (every other line is ignored). */
function events(stderr: string): Array<Record<string, any>> {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>)
    .filter((e) => e.event === 'keyset_changed')
}

describe('the audit trail: one keyset_changed line per change (CONTRACT §9)', { concurrency: true }, () => {
  it('stage, then promote: from/to, added/removed, actor, reason, and the times that matter; appended to --audit-log 0600', async () => {
    const file = await keysetFixture(tmp.file('two-phase.json'), { at: T0 })
    const log = tmp.file('two-phase.audit.jsonl')
    const first = readJson(file).current as string
    const stage = await cbcJwt(['rotate', '--stage', '--keyset-file', file, '--audit-log', log, '--reason', 'CHG-1 weekly'], { env: at(T0, { USER: 'alice' }) })
    assert.equal(stage.code, 0, stage.stderr)
    const [staged] = events(stage.stderr)
    const newKid = readJson(file).keys.find((k: any) => k.kid !== first).kid
    assert.deepEqual(
      { ...staged, keys: undefined },
      {
        event: 'keyset_changed',
        command: 'rotate --stage',
        location: file,
        from: first,
        to: first,
        added: [newKid],
        removed: [],
        at: T0,
        actor: 'alice',
        reason: 'CHG-1 weekly',
        keys: undefined,
      },
    )
    assert.deepEqual(staged!.keys, [{ kid: newKid, status: 'staged', was: null, created_at: T0, published: T0, promoted: null, not_after: null }])

    const promote = await cbcJwt(['rotate', '--promote', '--keyset-file', file, '--audit-log', log, '--actor', 'cron/cbc-jwt-rotate'], {
      env: at(LATER, { USER: 'alice' }),
    })
    assert.equal(promote.code, 0, promote.stderr)
    const [promoted] = events(promote.stderr)
    assert.equal(promoted!.command, 'rotate --promote')
    assert.deepEqual([promoted!.from, promoted!.to, promoted!.actor, promoted!.reason], [first, newKid, 'cron/cbc-jwt-rotate', null])
    assert.equal('revoked_before' in promoted!, false, 'revoked_before only when it changed')
    const byKid = Object.fromEntries(promoted!.keys.map((k: any) => [k.kid, k]))
    assert.deepEqual(byKid[newKid], { kid: newKid, status: 'current', was: 'staged', created_at: T0, published: T0, promoted: LATER, not_after: null })
    assert.equal(byKid[first].status, 'verify-only')
    assert.equal(byKid[first].not_after, '2026-11-26T01:00:00Z')

    const lines = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean)
    assert.deepEqual(
      lines.map((l) => JSON.parse(l)),
      [staged, promoted],
      'the file holds the same lines, appended',
    )
    assert.equal(fs.statSync(log).mode & 0o777, 0o600)
    assert.doesNotMatch(fs.readFileSync(log, 'utf8'), /"(d|k|jwk)":/, 'no key material')
  })

  it('compromised and revoke record revoked_before; the actor defaults to the environment user', async () => {
    const file = await keysetFixture(tmp.file('emergency.json'), { at: T0 })
    const old = readJson(file).current as string
    const r = await cbcJwt(['rotate', '--compromised', '--keyset-file', file, '--reason', 'INC-7 leaked key'], { env: at(LATER, { USER: 'bob' }) })
    assert.equal(r.code, 0, r.stderr)
    const [e] = events(r.stderr)
    assert.deepEqual([e!.command, e!.from, e!.revoked_before, e!.actor, e!.reason], ['rotate --compromised', old, LATER, 'bob', 'INC-7 leaked key'])
    assert.equal(e!.to, readJson(file).current)
    const revoke = await cbcJwt(['revoke', '--issued-before', '2026-11-25T01:30:00Z', '--keyset-file', file], {
      env: at('2026-11-25T01:30:00Z', { LOGNAME: 'carol' }),
    })
    assert.equal(revoke.code, 0, revoke.stderr)
    const [rv] = events(revoke.stderr)
    assert.deepEqual([rv!.command, rv!.revoked_before, rv!.actor, rv!.added, rv!.removed], ['revoke', '2026-11-25T01:30:00Z', 'carol', [], []])
  })

  it('no line when nothing changed or on a dry run; an --audit-log that cannot be opened stops the command before any change', async () => {
    const file = await keysetFixture(tmp.file('quiet.json'), { at: T0 })
    // The first --auto run stages the standby (a change, one line); the second has nothing to do.
    const standby = await cbcJwt(['rotate', '--auto', '--keyset-file', file], { env: at(LATER) })
    assert.equal(events(standby.stderr).length, 1, standby.stderr)
    const before = fs.readFileSync(file, 'utf8')
    const nothing = await cbcJwt(['rotate', '--auto', '--keyset-file', file], { env: at(LATER) })
    assert.equal(nothing.code, 0, nothing.stderr)
    assert.deepEqual(events(nothing.stderr), [])
    const dry = await cbcJwt(['rotate', '--keyset-file', file, '--dry-run'], { env: at(LATER) })
    assert.equal(dry.code, 0, dry.stderr)
    assert.deepEqual(events(dry.stderr), [])
    const bad = await cbcJwt(['rotate', '--keyset-file', file, '--audit-log', tmp.file('no-such-dir/audit.jsonl')], { env: at(LATER) })
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--audit-log .*ENOENT; nothing was changed/)
    assert.equal(fs.readFileSync(file, 'utf8'), before)
    // The refused value is escaped like every other flag's: an OSC sequence in it drives no terminal.
    const osc = await cbcJwt(['rotate', '--keyset-file', file, '--audit-log', tmp.file('no-such-dir/\x1b]0;pwned\x07.jsonl')], { env: at(LATER) })
    assert.equal(osc.code, 2)
    assert.match(osc.stderr, /--audit-log ".*no-such-dir\/\\x1b\]0;pwned\\x07\.jsonl": ENOENT; nothing was changed/)
    assert.doesNotMatch(osc.stderr, /[\x00-\x08\x0b-\x1f\x7f]/, 'a control character reached the terminal')
  })

  it('a dry run with --audit-log creates no log file (it writes nothing), yet refuses a log the real run could not open', async () => {
    const file = await keysetFixture(tmp.file('dry-log.json'), { at: T0 })
    const log = tmp.file('dry-log.audit.jsonl')
    for (const args of [
      ['rotate', '--keyset-file', file, '--dry-run', '--audit-log', log],
      ['revoke', '--keyset-file', file, '--jti', 'tok-1', '--dry-run', '--audit-log', log],
      ['keyset', 'restore', '--keyset-file', file, '--dry-run', '--audit-log', log],
    ]) {
      const dry = await cbcJwt(args, { env: at(LATER) })
      assert.notEqual(dry.code, 2, dry.stderr)
      assert.equal(fs.existsSync(log), false, `${args.slice(0, 2).join(' ')} --dry-run created its --audit-log`)
    }
    const bad = await cbcJwt(['revoke', '--keyset-file', file, '--jti', 'tok-1', '--dry-run', '--audit-log', tmp.file('no-such-dir/audit.jsonl')], {
      env: at(LATER),
    })
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /--audit-log .*ENOENT; nothing was changed/)
    const folder = await cbcJwt(['revoke', '--keyset-file', file, '--jti', 'tok-1', '--dry-run', '--audit-log', tmp.dir], { env: at(LATER) })
    assert.equal(folder.code, 2)
    assert.match(folder.stderr, /--audit-log .*EISDIR; nothing was changed/)
  })

  it('keyset init to a file is recorded (from null); with - it is not a change', async () => {
    const file = tmp.file('init.json')
    const r = await cbcJwt(['keyset', 'init', '--keyset-file', file, '--actor', 'dave'], { env: at(T0) })
    assert.equal(r.code, 0, r.stderr)
    const [e] = events(r.stderr)
    assert.deepEqual([e!.command, e!.from, e!.to, e!.added, e!.actor], ['keyset init', null, readJson(file).current, [readJson(file).current], 'dave'])
    const out = await cbcJwt(['keyset', 'init'], { env: at(T0) })
    assert.equal(out.stderr, '')
  })
  it('an --audit-log that names a file the change renames over (the keyset, its projection) is reported, never silently lost', async () => {
    for (const [name, logOf] of [
      ['self.json', (file: string) => file],
      ['own-projection.json', (file: string) => file.replace(/\.json$/, '.public.json')],
    ] as const) {
      const file = await keysetFixture(tmp.file(name), { at: T0 })
      const log = logOf(file)
      const r = await cbcJwt(['rotate', '--stage', '--keyset-file', file, '--audit-log', log], { env: at(LATER) })
      assert.equal(r.code, 1, r.stderr)
      assert.equal(events(r.stderr).length, 1, `the stderr line is the record: ${r.stderr}`)
      assert.match(
        r.stderr,
        /the keyset was changed, but --audit-log ".*" was replaced by the change itself \(it names a file the command writes\); the line above is the record/,
      )
      assert.doesNotMatch(fs.readFileSync(log, 'utf8'), /keyset_changed/)
      assert.equal(readJson(file).keys.length, 2, 'the stage was written')
    }
  })
})
