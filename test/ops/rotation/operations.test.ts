import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RefusedError } from '../../../src/lib/errors.js'
import { keyStatus } from '../../../src/lib/keyset/document.js'
import { loadKeyset } from '../../../src/lib/keyset/load.js'
import { describeChange, diffKeysets } from '../../../src/ops/rotation/diff.js'
import { defaultGraceMs, propagationWindowMs } from '../../../src/ops/rotation/policy.js'
import { pruneExpired } from '../../../src/ops/rotation/prune.js'
import { pruneRevocations, revokeTargets } from '../../../src/ops/rotation/revocations.js'
import { setRevokedBefore } from '../../../src/ops/rotation/revoke.js'
import { rotateCompromised, rotateNow } from '../../../src/ops/rotation/rotate.js'
import { autoRotate, promoteStaged, stageKey } from '../../../src/ops/rotation/two-phase.js'
import { DAY, HOUR, MIN, T0, entry, iso, keysetAt, recordingFactory } from './helpers.js'

const WINDOW = propagationWindowMs(30)

describe('propagationWindowMs', () => {
  it('is twice the refresh interval plus 90 s for the kubelet', () => {
    assert.equal(propagationWindowMs(30), 150_000)
    assert.equal(propagationWindowMs(5), 100_000)
  })
})

describe('defaultGraceMs', () => {
  it('is the max token TTL, but never below 24 h', () => {
    assert.equal(defaultGraceMs(HOUR), DAY)
    assert.equal(defaultGraceMs(2 * DAY), 2 * DAY)
  })
})

describe('rotateNow', () => {
  it('makes a new key of the same alg current and gives the old one now + grace; the input is untouched', async () => {
    const doc = await keysetAt(T0 - 3 * DAY)
    const before = structuredClone(doc)
    const { newKey, made } = recordingFactory()
    const { doc: next } = await rotateNow(doc, { now: T0, graceMs: DAY, newKey })
    assert.deepEqual(doc, before)
    assert.equal(next.current, made[0])
    assert.match(next.current, /^k-20261125-[0-9a-f]{6}$/)
    assert.equal(entry(next, next.current).alg, 'ES256')
    assert.equal(entry(next, next.current).created_at, iso(T0))
    assert.equal(entry(next, before.current).not_after, iso(T0 + DAY))
    assert.equal(keyStatus(next, entry(next, before.current)), 'verify-only')
    loadKeyset(next, T0) // valid
  })

  it('refuses a negative grace: the old key would stop verifying before the rotation is even published', async () => {
    await assert.rejects(rotateNow(await keysetAt(T0 - DAY), { now: T0, graceMs: -1 }), RangeError)
  })

  it('uses --alg for the new key', async () => {
    const { doc } = await rotateNow(await keysetAt(T0 - DAY), { now: T0, graceMs: DAY, alg: 'HS256' })
    assert.equal(entry(doc, doc.current).alg, 'HS256')
    assert.equal(entry(doc, doc.current).jwk.kty, 'oct')
  })

  it('prunes keys past not_after and keeps the ones still verifying', async () => {
    const doc = await keysetAt(T0 - 10 * DAY)
    const expired = { ...(await keysetAt(T0 - 9 * DAY)).keys[0]!, not_after: iso(T0 - 1000) }
    const retiring = { ...(await keysetAt(T0 - 8 * DAY)).keys[0]!, not_after: iso(T0 + 12 * HOUR) }
    doc.keys.push(expired, retiring)
    loadKeyset(doc, T0)
    const { doc: next } = await rotateNow(doc, { now: T0, graceMs: DAY })
    assert.deepEqual(
      next.keys.map((k) => k.kid),
      [next.current, doc.current, retiring.kid],
    )
    assert.equal(entry(next, retiring.kid).not_after, iso(T0 + 12 * HOUR))
    assert.equal(entry(next, doc.current).not_after, iso(T0 + DAY))
  })

  it('supersedes a staged key (not_after = now) so --auto will not rotate again right after', async () => {
    const staged = (await stageKey(await keysetAt(T0 - 6 * DAY), { now: T0 - HOUR })).doc
    const stagedKid = staged.keys.at(-1)!.kid
    const { doc } = await rotateNow(staged, { now: T0, graceMs: DAY })
    assert.equal(entry(doc, stagedKid).not_after, iso(T0))
    assert.notEqual(doc.current, stagedKid)
    const again = await autoRotate(doc, { now: T0 + HOUR, everyMs: 6 * DAY, propagationWindowMs: WINDOW, graceMs: DAY })
    assert.equal(again.doc.current, doc.current)
  })

  it('says the old key keeps verifying only as long as its own not_after lets it (JWTNoKeysLoaded repair)', async () => {
    const expired = await keysetAt(T0 - 3 * DAY)
    expired.keys[0]!.not_after = iso(T0 - DAY)
    const { doc, notes } = await rotateNow(expired, { now: T0, graceMs: DAY })
    assert.equal(entry(doc, expired.current).not_after, iso(T0 - DAY), 'a retired key is never revived')
    assert.ok(!notes.some((n) => n.includes('keeps verifying')), notes.join('\n'))
    assert.ok(
      notes.some((n) => n.includes(`${expired.current} stopped verifying at ${iso(T0 - DAY)}`)),
      notes.join('\n'),
    )
    const soon = await keysetAt(T0 - 3 * DAY)
    soon.keys[0]!.not_after = iso(T0 + HOUR)
    const later = await rotateNow(soon, { now: T0, graceMs: DAY })
    assert.ok(later.notes.includes(`${soon.current} keeps verifying for 1h, until ${iso(T0 + HOUR)}`), later.notes.join('\n'))
  })

  it('never reuses a kid', async () => {
    const taken: string[] = []
    const { doc } = await rotateNow(await keysetAt(T0), {
      now: T0,
      graceMs: DAY,
      newKey: async (alg, opts) => {
        taken.push(...opts.taken)
        return await recordingFactory().newKey(alg, opts)
      },
    })
    assert.equal(new Set(doc.keys.map((k) => k.kid)).size, doc.keys.length)
    assert.deepEqual(taken, [doc.keys[1]!.kid])
  })
})

describe('rotateCompromised', () => {
  it('the standby signs at once, every other key stops verifying now, earlier tokens are revoked, a new standby is staged', async () => {
    let doc = await keysetAt(T0 - 8 * DAY)
    doc = (await rotateNow(doc, { now: T0 - 2 * DAY, graceMs: 3 * DAY })).doc // a verify-only key, still in grace
    doc = (await stageKey(doc, { now: T0 - HOUR })).doc // the standby, published an hour ago
    const standby = doc.keys.at(-1)!.kid
    const previous = doc.keys.map((k) => k.kid).filter((kid) => kid !== standby)
    const { newKey, made } = recordingFactory()
    const now = T0 + 999 // ms are dropped: revoked_before is whole seconds, rounded down
    const { doc: next, notes } = await rotateCompromised(doc, { now, newKey })
    assert.equal(next.current, standby, 'the standby: every replica already verifies with it')
    assert.equal(entry(next, standby).not_after, undefined)
    assert.equal(next.revoked_before, iso(T0))
    for (const kid of previous) assert.equal(entry(next, kid).not_after, iso(T0), kid)
    const loaded = loadKeyset(next, now)
    for (const kid of previous) assert.ok(now >= loaded.keys.get(kid)!.notAfter!, `${kid} no longer verifies`)
    assert.equal(loaded.current.kid, standby)
    assert.deepEqual(made.length, 1, 'one new key: the next standby')
    assert.equal(keyStatus(next, entry(next, made[0]!)), 'staged')
    assert.ok(notes.some((n) => n.includes(`promoted the standby ${standby}`)))
  })

  it('without a standby (or with --fresh-key) a freshly generated key signs, and a new standby is staged', async () => {
    const plain = await keysetAt(T0 - 2 * DAY)
    const withStandby = (await stageKey(plain, { now: T0 - HOUR })).doc
    for (const [doc, freshKey] of [
      [plain, false],
      [withStandby, true],
    ] as const) {
      const { newKey, made } = recordingFactory()
      const { doc: next, notes } = await rotateCompromised(doc, { now: T0, newKey, freshKey })
      assert.equal(next.current, made[0], 'a freshly generated key')
      assert.equal(keyStatus(next, entry(next, made[1]!)), 'staged', 'the next standby')
      for (const k of doc.keys) assert.equal(entry(next, k.kid).not_after, iso(T0), `${k.kid} (the skipped standby too)`)
      assert.ok(notes.some((n) => n.includes(freshKey ? 'standby skipped (--fresh-key)' : 'no standby was staged')))
    }
  })

  it('with several staged keys, promotes the one published longest (the most likely on every replica)', async () => {
    const doc = await keysetAt(T0 - 2 * DAY)
    const older = (await keysetAt(T0 - 3 * HOUR)).keys[0]!
    const newer = (await keysetAt(T0 - HOUR)).keys[0]!
    doc.keys.push(newer, older)
    const { doc: next } = await rotateCompromised(doc, { now: T0 })
    assert.equal(next.current, older.kid)
    assert.equal(entry(next, newer.kid).not_after, iso(T0))
  })

  it('with --alg, a standby of another algorithm is not promoted: a fresh key of that algorithm signs', async () => {
    const doc = (await stageKey(await keysetAt(T0 - 2 * DAY), { now: T0 - HOUR })).doc
    const standby = doc.keys.at(-1)!.kid
    const { newKey, made } = recordingFactory()
    const { doc: next } = await rotateCompromised(doc, { now: T0, alg: 'ES384', newKey })
    assert.equal(next.current, made[0])
    assert.equal(entry(next, next.current).alg, 'ES384')
    assert.equal(entry(next, standby).not_after, iso(T0))
  })

  it('keeps a later revoked_before', async () => {
    const doc = { ...(await keysetAt(T0 - DAY)), revoked_before: iso(T0 + 30_000) }
    const { doc: next } = await rotateCompromised(doc, { now: T0 })
    assert.equal(next.revoked_before, iso(T0 + 30_000))
  })
})

describe('stageKey and promoteStaged', () => {
  it('stages a key that verifies but does not sign', async () => {
    const doc = await keysetAt(T0 - DAY)
    const { doc: staged } = await stageKey(doc, { now: T0 })
    const added = staged.keys.at(-1)!
    assert.equal(staged.current, doc.current)
    assert.equal(added.not_after, undefined)
    assert.equal(keyStatus(staged, added), 'staged')
    assert.equal(added.created_at, iso(T0), 'publication time is created_at')
    assert.equal(loadKeyset(staged, T0).keys.get(added.kid)!.status, 'staged')
  })

  it('refuses to stage a second key', async () => {
    const { doc } = await stageKey(await keysetAt(T0 - DAY), { now: T0 })
    await assert.rejects(stageKey(doc, { now: T0 + MIN }), (err: unknown) => err instanceof RefusedError && /already staged/.test(err.message))
  })

  it('a staged key past the 7-day SLA: promotion refused (it would break the SLA at once), staging replaces it', async () => {
    // The JWTKeyAgeExceeded playbook is stage, then promote. With a standby left over from a
    // CronJob that stopped, promoting it would keep the alert firing; staging was refused.
    const { doc } = await stageKey(await keysetAt(T0 - 10 * DAY), { now: T0 - 8 * DAY })
    const old = doc.keys.at(-1)!
    assert.throws(
      () => promoteStaged(doc, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW }),
      (err: unknown) =>
        err instanceof RefusedError && /staged 8d ago/.test(err.message) && /7-day key-age SLA/.test(err.message) && /rotate --stage/.test(err.message),
    )
    const forced = promoteStaged(doc, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW, force: true })
    assert.equal(forced.doc.current, old.kid)
    assert.match(forced.notes[0]!, /^forced: .* past the 7-day key-age SLA/)

    const { doc: restaged, notes } = await stageKey(doc, { now: T0 })
    const fresh = restaged.keys.at(-1)!
    assert.notEqual(fresh.kid, old.kid)
    assert.equal(entry(restaged, old.kid).not_after, iso(T0), 'the old standby never signed: it stops verifying now')
    assert.equal(keyStatus(restaged, fresh), 'staged')
    assert.match(notes[0]!, new RegExp(`^staged key ${old.kid} waited 8d, past the 7-day key-age SLA: retired`))
    const { doc: promoted } = promoteStaged(restaged, { now: T0 + WINDOW, graceMs: DAY, propagationWindowMs: WINDOW })
    assert.equal(promoted.current, fresh.kid)
    loadKeyset(promoted, T0 + WINDOW)

    // Just under the SLA it is still the one to promote, and staging another is still refused.
    const { doc: recent } = await stageKey(await keysetAt(T0 - 10 * DAY), { now: T0 - 7 * DAY + MIN })
    assert.equal(promoteStaged(recent, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW }).doc.current, recent.keys.at(-1)!.kid)
    await assert.rejects(stageKey(recent, { now: T0 }), /already staged/)
  })

  it('a staged key exactly 7 days old is refused too: as current it would pass the SLA the next instant', async () => {
    const { doc } = await stageKey(await keysetAt(T0 - 10 * DAY), { now: T0 - 7 * DAY })
    assert.throws(() => promoteStaged(doc, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW }), /7-day key-age SLA/)
    assert.equal(promoteStaged(doc, { now: T0 - 1000, graceMs: DAY, propagationWindowMs: WINDOW }).doc.current, doc.keys.at(-1)!.kid)
  })

  it('refuses promotion before the propagation window, saying how long to wait', async () => {
    const { doc } = await stageKey(await keysetAt(T0 - DAY), { now: T0 })
    assert.throws(
      () => promoteStaged(doc, { now: T0 + MIN, graceMs: DAY, propagationWindowMs: WINDOW }),
      (err: unknown) => err instanceof RefusedError && /published 1m ago/.test(err.message) && /in 1m30s/.test(err.message) && /--force/.test(err.message),
    )
  })

  it('promotes once the window has passed; the old current key verifies for the grace', async () => {
    const base = await keysetAt(T0 - DAY)
    const { doc } = await stageKey(base, { now: T0 })
    const stagedKid = doc.keys.at(-1)!.kid
    const { doc: next } = promoteStaged(doc, { now: T0 + WINDOW, graceMs: 2 * DAY, propagationWindowMs: WINDOW })
    assert.equal(next.current, stagedKid)
    assert.equal(entry(next, base.current).not_after, iso(T0 + WINDOW + 2 * DAY))
    loadKeyset(next, T0 + WINDOW)
  })

  it('says how long the old current key really keeps verifying when its not_after comes before the grace ends', async () => {
    const base = await keysetAt(T0 - DAY)
    base.keys[0]!.not_after = iso(T0 + 2 * HOUR)
    const { doc } = await stageKey(base, { now: T0 })
    const { notes } = promoteStaged(doc, { now: T0 + WINDOW, graceMs: DAY, propagationWindowMs: WINDOW })
    assert.ok(
      notes.some((n) => n.startsWith(`${base.current} keeps verifying for 1h57m, until ${iso(T0 + 2 * HOUR)}`)),
      notes.join('\n'),
    )
  })

  it('promotes early with force, and says so', async () => {
    const { doc } = await stageKey(await keysetAt(T0 - DAY), { now: T0 })
    const { doc: next, notes } = promoteStaged(doc, { now: T0 + 1000, graceMs: DAY, propagationWindowMs: WINDOW, force: true })
    assert.equal(next.current, doc.keys.at(-1)!.kid)
    assert.match(notes[0]!, /^forced/)
  })

  it('refuses without a staged key, and asks for --kid when there are several', async () => {
    const doc = await keysetAt(T0 - DAY)
    assert.throws(() => promoteStaged(doc, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW }), /no staged key/)
    const other = (await keysetAt(T0 - HOUR)).keys[0]!
    const two = { ...doc, keys: [...doc.keys, (await stageKey(doc, { now: T0 - HOUR })).doc.keys.at(-1)!, other] }
    assert.throws(() => promoteStaged(two, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW }), /several keys are staged .*--kid/)
    const { doc: next } = promoteStaged(two, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW, kid: other.kid })
    assert.equal(next.current, other.kid)
    assert.throws(() => promoteStaged(two, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW, kid: doc.current }), /is current, not staged/)
  })
})

describe('autoRotate', () => {
  const auto = (doc: Parameters<typeof autoRotate>[0], now: number) => autoRotate(doc, { now, everyMs: 6 * DAY, propagationWindowMs: WINDOW, graceMs: DAY })

  it('keeps a standby: stages one when none is, then changes nothing until it is due', async () => {
    const doc = await keysetAt(T0)
    const { doc: next, notes } = await auto(doc, T0 + DAY)
    assert.equal(next.current, doc.current)
    const standby = next.keys.find((k) => keyStatus(next, k) === 'staged')
    assert.ok(standby, 'a standby is staged at once')
    assert.match(notes.at(-1)!, /as the standby/)
    const again = await auto(next, T0 + 2 * DAY)
    assert.deepEqual(again.doc, next, 'nothing due: nothing written')
    assert.match(again.notes[0]!, new RegExp(`${standby.kid} is the standby; it becomes current from`))
  })

  it('stages when due (age >= every - window), promotes when ready, and is idempotent at every step', async () => {
    const doc = await keysetAt(T0)
    const due = T0 + 6 * DAY - WINDOW
    const staged = (await auto(doc, due)).doc
    assert.equal(staged.keys.length, 2)
    assert.equal(staged.current, doc.current)
    assert.deepEqual((await auto(staged, due)).doc, staged, 'second run changes nothing')
    assert.deepEqual((await auto(staged, due + WINDOW - 1000)).doc, staged, 'not ready yet')
    const promoted = (await auto(staged, due + WINDOW)).doc
    assert.equal(promoted.current, staged.keys[1]!.kid)
    assert.equal(entry(promoted, doc.current).not_after, iso(due + WINDOW + DAY))
    assert.deepEqual((await auto(promoted, due + WINDOW)).doc, promoted, 'second run changes nothing')
  })

  it('keeps the current key under the 7-day SLA with hourly runs over 30 days, the keyset always valid', async () => {
    let doc = await keysetAt(T0)
    let rotations = 0
    let oldest = 0
    for (let now = T0; now <= T0 + 30 * DAY; now += HOUR) {
      const next = (await auto(doc, now)).doc
      if (next.current !== doc.current) rotations++
      doc = next
      const loaded = loadKeyset(doc, now)
      oldest = Math.max(oldest, now - loaded.current.createdAt)
      assert.ok(doc.keys.length <= 3, `keys pile up at ${iso(now)}: ${doc.keys.length}`)
      if (now > T0) assert.equal(doc.keys.filter((k) => keyStatus(doc, k) === 'staged').length, 1, `a standby at ${iso(now)}`)
    }
    // Each key is the standby for half of 6d - 150s, then current for the other half: a
    // promotion about every 3 days, and a standby staged after every run.
    assert.ok(rotations >= 9 && rotations <= 10, `rotations: ${rotations}`)
    assert.ok(oldest <= 6 * DAY - WINDOW, `the oldest current key seen after a run: ${oldest / HOUR} h`)
  })

  it('retires a staged key that waited longer than a period instead of promoting it', async () => {
    const staleDoc = (await stageKey(await keysetAt(T0 - 13 * DAY), { now: T0 - 7 * DAY })).doc
    const stale = staleDoc.keys.at(-1)!.kid
    const { doc, notes } = await auto(staleDoc, T0)
    assert.notEqual(doc.current, stale)
    assert.equal(entry(doc, stale).not_after, iso(T0))
    const fresh = doc.keys.find((k) => keyStatus(doc, k) === 'staged')
    assert.ok(fresh, 'a fresh key is staged in its place (the current key is due)')
    assert.ok(notes.some((n) => n.includes(`staged key ${stale} waited 7d`)))
  })

  it('a standby staged while the current key is overdue says it signs after the window, not half a period later', async () => {
    const { doc, notes } = await auto(await keysetAt(T0 - 13 * DAY), T0)
    const standby = doc.keys.find((k) => keyStatus(doc, k) === 'staged')!
    assert.match(notes.at(-1)!, new RegExp(`staged ${standby.kid} as the standby: published now, it signs from ${iso(T0 + WINDOW)} `))
    assert.equal((await auto(doc, T0 + WINDOW)).doc.current, standby.kid, 'and the run then promotes it')
  })

  it('promotes the standby once it has been the standby for half of every − window, not a second earlier (docs/rotation.md)', async () => {
    const half = (6 * DAY - WINDOW) / 2
    const { doc } = await stageKey(await keysetAt(T0), { now: T0 + HOUR })
    const standby = doc.keys.at(-1)!.kid
    assert.deepEqual((await auto(doc, T0 + HOUR + half - 1000)).doc, doc, 'a second before half a life: nothing to do')
    assert.equal((await auto(doc, T0 + HOUR + half)).doc.current, standby)
  })

  it('promotes a younger standby at once when the current key is due (age ≥ every − window), not a second earlier', async () => {
    const due = T0 + 6 * DAY - WINDOW
    const { doc } = await stageKey(await keysetAt(T0), { now: due - HOUR })
    const standby = doc.keys.at(-1)!.kid
    assert.deepEqual((await auto(doc, due - 1000)).doc, doc, 'a second before the current key is due: nothing to do')
    assert.equal((await auto(doc, due)).doc.current, standby)
  })

  it('retires a standby that has waited exactly every − window: as current it would be due at once', async () => {
    const life = 6 * DAY - WINDOW
    const { doc: staleDoc } = await stageKey(await keysetAt(T0 - DAY), { now: T0 })
    const stale = staleDoc.keys.at(-1)!.kid
    const { doc } = await auto(staleDoc, T0 + life)
    assert.equal(entry(doc, stale).not_after, iso(T0 + life))
    assert.equal(doc.keys.filter((k) => keyStatus(doc, k) === 'staged').length, 1, 'one standby: the fresh one')
  })

  it('refuses a period that is not more than twice the window', async () => {
    await assert.rejects(autoRotate(await keysetAt(T0), { now: T0, everyMs: 2 * WINDOW, propagationWindowMs: WINDOW, graceMs: DAY }), RangeError)
  })
})

describe('setRevokedBefore', () => {
  it('sets revoked_before to whole seconds', async () => {
    const { doc } = setRevokedBefore(await keysetAt(T0 - DAY), { issuedBeforeMs: T0 + 999 })
    assert.equal(doc.revoked_before, iso(T0))
  })

  it('setting the time it already has is a no-op, not a refusal (a revoke run twice)', async () => {
    const doc = { ...(await keysetAt(T0 - DAY)), revoked_before: iso(T0) }
    assert.deepEqual(setRevokedBefore(doc, { issuedBeforeMs: T0 + 500 }), { doc, notes: [] })
  })

  it('refuses to move it earlier (that would un-revoke tokens) unless forced', async () => {
    const doc = { ...(await keysetAt(T0 - DAY)), revoked_before: iso(T0) }
    assert.throws(
      () => setRevokedBefore(doc, { issuedBeforeMs: T0 - HOUR }),
      (err: unknown) => err instanceof RefusedError && /would accept tokens/.test(err.message),
    )
    assert.equal(setRevokedBefore(doc, { issuedBeforeMs: T0 - HOUR, force: true }).doc.revoked_before, iso(T0 - HOUR))
    assert.equal(setRevokedBefore(doc, { issuedBeforeMs: T0 + HOUR }).doc.revoked_before, iso(T0 + HOUR))
  })
})

describe('pruneExpired', () => {
  it('removes keys strictly past not_after, never the current key', async () => {
    const doc = await keysetAt(T0 - DAY)
    const other = (await keysetAt(T0 - DAY)).keys[0]!
    const third = (await keysetAt(T0 - DAY)).keys[0]!
    doc.keys.push({ ...other, not_after: iso(T0) }, { ...third, not_after: iso(T0 - 1000) })
    assert.deepEqual(pruneExpired(doc, T0), [third.kid])
    assert.deepEqual(
      doc.keys.map((k) => k.kid),
      [doc.current, other.kid],
    )
  })
})

describe('revokeTargets', () => {
  it('revoking a client again at the same time changes nothing: the rule keeps its created_at', async () => {
    const { doc } = revokeTargets(await keysetAt(T0 - DAY), { kind: 'client_id', values: ['c'], issuedBeforeMs: T0, nowMs: T0 })
    const again = revokeTargets(doc, { kind: 'client_id', values: ['c'], issuedBeforeMs: T0, nowMs: T0 + MIN })
    assert.deepEqual(again.doc, doc)
    assert.deepEqual(again.notes, ['1 client id(s) already revoked as asked'])
  })

  it('a token id already revoked keeps the later expires_at, even with force: the rule must outlast the token', async () => {
    const { doc } = revokeTargets(await keysetAt(T0 - DAY), { kind: 'jti', values: ['j'], expiresAtMs: T0 + HOUR, nowMs: T0 })
    for (const force of [false, true]) {
      const earlier = revokeTargets(doc, { kind: 'jti', values: ['j'], expiresAtMs: T0 + MIN, nowMs: T0 + 1000, force })
      assert.deepEqual(earlier.doc, doc)
    }
    const later = revokeTargets(doc, { kind: 'jti', values: ['j'], expiresAtMs: T0 + 2 * HOUR, nowMs: T0 + 1000 })
    assert.deepEqual(later.doc.revocations, [{ jti: 'j', expires_at: iso(T0 + 2 * HOUR), created_at: iso(T0 + 1000) }])
  })
})

describe('pruneRevocations', () => {
  // Not the defaults, so that each term of the drop time counts on its own.
  const life = { maxTokenTtlMs: 2 * HOUR, clockToleranceMs: 45_000 }
  const rules = () => [
    { client_id: 'c', issued_before: iso(T0), created_at: iso(T0) },
    { sub: 's', issued_before: iso(T0), created_at: iso(T0) },
    { jti: 'j', expires_at: iso(T0 + HOUR), created_at: iso(T0) },
  ]
  /** The kinds of the rules a write at `nowMs` keeps. */
  const kept = async (nowMs: number) => {
    const doc = { ...(await keysetAt(T0 - DAY)), revocations: rules() }
    pruneRevocations(doc, nowMs, life)
    return (doc.revocations ?? []).map((r) => Object.keys(r)[0])
  }

  it('keeps a jti rule until expires_at + the clock tolerance, exactly, then drops it', async () => {
    assert.deepEqual(await kept(T0 + HOUR + 45_000), ['client_id', 'sub', 'jti'])
    assert.deepEqual(await kept(T0 + HOUR + 45_001), ['client_id', 'sub'])
  })

  it('keeps a client or subject rule until issued_before + the max token TTL + twice the tolerance, exactly (docs/cli.md)', async () => {
    assert.deepEqual(await kept(T0 + 2 * HOUR + 90_000), ['client_id', 'sub'])
    assert.deepEqual(await kept(T0 + 2 * HOUR + 90_001), [])
  })

  it('returns the rules dropped, and removes a list it emptied rather than writing an empty one', async () => {
    const doc = { ...(await keysetAt(T0 - DAY)), revocations: rules() }
    const dropped = pruneRevocations(doc, T0 + DAY, life)
    assert.deepEqual(dropped, rules())
    assert.equal('revocations' in doc, false)
  })
})

describe('diffKeysets', () => {
  it('names every added, changed and pruned key and the revocation', async () => {
    const doc = await keysetAt(T0 - 8 * DAY)
    const mid = (await rotateNow(doc, { now: T0 - 3 * DAY, graceMs: DAY })).doc
    const next = (await rotateCompromised(mid, { now: T0 })).doc
    const lines = diffKeysets(mid, next).map(describeChange)
    const standby = next.keys.find((k) => keyStatus(next, k) === 'staged')!.kid
    assert.deepEqual(lines, [
      `revoked_before  (none) → ${iso(T0)}`,
      `added    ${next.current}  ES256 current`,
      `changed  ${mid.current}  current → verify-only, not_after ${iso(T0)}`,
      `added    ${standby}  ES256 staged`,
      `pruned   ${doc.current}  (was verify-only)`,
    ])
  })
})

describe('a staged key a verification projection lacks (unpublished)', () => {
  // Its created_at says when the projection published it; a projection that lacks it (deleted,
  // edited outside cbc-jwt) makes that false: no verifier has the key, whatever its age.
  const lacking = (kid: string) => async (asked: string) => (asked === kid ? ['/x/keyset.public.json lacks it'] : [])

  it('promoteStaged refuses it past the window, saying what to do; --force promotes it with a note instead of the window one', async () => {
    const { doc } = await stageKey(await keysetAt(T0 - DAY), { now: T0 - HOUR })
    const kid = doc.keys.at(-1)!.kid
    const unpublished = ['/x/keyset.public.json lacks it']
    assert.throws(
      () => promoteStaged(doc, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW, unpublished }),
      (err: unknown) =>
        err instanceof RefusedError &&
        err.message.startsWith(`refusing to promote ${kid}: the verification projection does not hold it (/x/keyset.public.json lacks it)`) &&
        /stage a fresh key with rotate --stage/.test(err.message),
    )
    const forced = promoteStaged(doc, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW, unpublished, force: true })
    assert.equal(forced.doc.current, kid)
    assert.match(forced.notes[0]!, new RegExp(`^forced: ${kid} was not in the verification projection`))
    assert.equal(promoteStaged(doc, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW, unpublished: [] }).doc.current, kid)
  })

  it('--force: one note for a key the projection lacks, whatever its age: no window note beside it, the SLA one kept', async () => {
    const unpublished = ['/x/keyset.public.json lacks it']
    // Staged a moment ago: its created_at says nothing here, so no "published only 10s ago" as well.
    const young = await stageKey(await keysetAt(T0 - DAY), { now: T0 - 10_000 })
    const kid = young.doc.keys.at(-1)!.kid
    const forced = promoteStaged(young.doc, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW, unpublished, force: true })
    assert.deepEqual(
      forced.notes.filter((n) => n.startsWith('forced: ')),
      [
        `forced: ${kid} was not in the verification projection (/x/keyset.public.json lacks it); published now, just before it signs: verifiers refuse its tokens until they have loaded it`,
      ],
    )
    // Staged past the 7-day SLA as well: both are said, each a reason the promotion was forced.
    const old = await stageKey(await keysetAt(T0 - 9 * DAY), { now: T0 - 8 * DAY })
    const oldKid = old.doc.keys.at(-1)!.kid
    const both = promoteStaged(old.doc, { now: T0, graceMs: DAY, propagationWindowMs: WINDOW, unpublished, force: true })
    assert.deepEqual(
      both.notes.filter((n) => n.startsWith('forced: ')).map((n) => n.split(' ').slice(0, 6).join(' ')),
      [`forced: ${oldKid} is 8d old, past`, `forced: ${oldKid} was not in the`],
    )
  })

  it('stageKey retires it (it never signed) and stages a fresh key, where it would refuse a second one', async () => {
    const { doc } = await stageKey(await keysetAt(T0 - DAY), { now: T0 - HOUR })
    const kid = doc.keys.at(-1)!.kid
    const { doc: next, notes } = await stageKey(doc, { now: T0, unpublished: lacking(kid) })
    assert.equal(entry(next, kid).not_after, iso(T0))
    assert.equal(next.keys.filter((k) => keyStatus(next, k) === 'staged').length, 1)
    assert.match(notes[0]!, new RegExp(`^staged key ${kid} is not in the verification projection \\(/x/keyset.public.json lacks it\\): retired`))
    await assert.rejects(stageKey(doc, { now: T0, unpublished: async () => [] }), /already staged/)
  })

  it('autoRotate does not promote it when due: retired, a fresh standby staged (with or without the gate)', async () => {
    const { doc } = await stageKey(await keysetAt(T0 - 6 * DAY), { now: T0 - 2 * DAY })
    const kid = doc.keys.at(-1)!.kid
    for (const gate of [undefined, async () => 'every replica has it']) {
      const { doc: next } = await autoRotate(doc, {
        now: T0,
        everyMs: 6 * DAY,
        propagationWindowMs: WINDOW,
        graceMs: DAY,
        unpublished: lacking(kid),
        ...(gate ? { gate } : {}),
      })
      assert.equal(next.current, doc.current, 'not promoted')
      assert.equal(entry(next, kid).not_after, iso(T0))
      const fresh = next.keys.filter((k) => keyStatus(next, k) === 'staged')
      assert.equal(fresh.length, 1)
      assert.equal(fresh[0]!.created_at, iso(T0), 'timed from now, when this write publishes it')
    }
  })

  it('rotateCompromised takes a published standby only; one the projection lacks is cut off with the rest', async () => {
    const doc = await keysetAt(T0 - 2 * DAY)
    const older = (await keysetAt(T0 - 3 * HOUR)).keys[0]!
    const newer = (await keysetAt(T0 - HOUR)).keys[0]!
    doc.keys.push(newer, older)
    const { doc: next, notes } = await rotateCompromised(doc, { now: T0, unpublished: lacking(older.kid) })
    assert.equal(next.current, newer.kid, 'the older standby is not on the verifiers')
    assert.equal(entry(next, older.kid).not_after, iso(T0))
    assert.ok(
      notes.some((n) => n.startsWith(`the standby ${older.kid} is not in the verification projection`) && n.includes(`promoted the standby ${newer.kid}`)),
    )
    const { newKey, made } = recordingFactory()
    const none = await rotateCompromised(doc, { now: T0, newKey, unpublished: async () => ['/x lacks it'] })
    assert.equal(none.doc.current, made[0])
    assert.ok(none.notes.some((n) => /: not promoted; k-\S+ is new, and a replica verifies its tokens only once it has loaded this keyset$/.test(n)))
  })
})
