// The runbook's "Verification Checklist After Rotation", automated against the real service
// process reading a Kubernetes-style secret volume:
//   - /metrics reports the new kid on cbc_jwt_active_key_age_seconds with an age close to 0
//   - cbc_jwt_keys_loaded reflects the updated number of keys
//   - legacy tokens continue to validate until their expiry
//   - cbc_jwt_backend_errors_total remains 0
// The refresh interval is 60 s and the unknown-kid cooldown an hour, so a reload within 2 s can
// only come from the directory watch.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { BACKEND_ERROR_REASONS } from '../../src/lib/reasons.js'
import { KubeletVolume } from '../support/kubelet-volume.js'
import { makeKey, makeKeyset, signToken, validClaims, type TestKey } from '../support/keys.js'
import { series, valueOf, type Exposition } from '../support/metrics-text.js'
import { startService, type RunningService } from '../support/service.js'
import { waitFor } from '../support/wait.js'

const DAY = 86_400_000
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-rotation-'))
const volume = new KubeletVolume(path.join(root, 'secrets'))
const keyA = makeKey('ES256', 'k-20261118-77c1')
const keyB = makeKey('ES256', 'k-20261125-3f9a')
const keyC = makeKey('EdDSA', 'k-20261202-0b1d')
let service: RunningService

/** `current` first (created now), then the older keys retiring in 24 h. */
function rotatedKeyset(current: TestKey, older: TestKey[]) {
  const now = Date.now()
  return makeKeyset([
    { key: current, opts: { createdAt: new Date(now) } },
    ...older.map((key, i) => ({ key, opts: { createdAt: new Date(now - (i + 1) * 7 * DAY), notAfter: new Date(now + DAY) } })),
  ])
}

async function whoami(token: string) {
  return service.get('/v1/whoami', { authorization: `Bearer ${token}` })
}

function assertNoBackendErrors(m: Exposition) {
  for (const reason of BACKEND_ERROR_REASONS) {
    assert.equal(valueOf(m, 'cbc_jwt_backend_errors_total', { reason }), 0, `cbc_jwt_backend_errors_total{reason="${reason}"}`)
  }
}

/** Rotates to `current` by a kubelet-style swap and checks the runbook's list; returns the metrics. */
async function rotateAndVerify(current: TestKey, older: TestKey[], expect: { rotations: number; keysLoaded: number }) {
  const previous = series(await service.metrics(), 'cbc_jwt_active_key_age_seconds')[0]!.labels.kid
  volume.writeKeyset(rotatedKeyset(current, older))
  const m = await waitFor(
    async () => {
      const m = await service.metrics()
      return valueOf(m, 'cbc_jwt_active_key_age_seconds', { kid: current.kid }) !== undefined && m
    },
    { timeoutMs: 2000, intervalMs: 50, what: `the age gauge to show ${current.kid} (interval is 60 s: only the watch can do it)` },
  )
  const age = series(m, 'cbc_jwt_active_key_age_seconds')
  assert.equal(age.length, 1, `one series only, got ${JSON.stringify(age)}`)
  assert.equal(age[0]!.labels.kid, current.kid)
  assert.ok(age[0]!.value >= 0 && age[0]!.value < 5, `age ${age[0]!.value} s is not close to 0`)
  assert.equal(valueOf(m, 'cbc_jwt_active_key_age_seconds', { kid: previous! }), undefined, 'the old kid still has a series')
  assert.equal(valueOf(m, 'cbc_jwt_key_rotations_total'), expect.rotations)
  assert.equal(valueOf(m, 'cbc_jwt_keys_loaded'), expect.keysLoaded)
  assertNoBackendErrors(m)
  return m
}

describe('rotation through a kubelet secret volume swap (runbook checklist)', () => {
  const legacyA = signToken(keyA, validClaims({ sub: 'legacy-a' }))

  before(async () => {
    volume.writeKeyset(makeKeyset([{ key: keyA, opts: { createdAt: new Date(Date.now() - 6 * DAY) } }]))
    service = await startService({
      env: {
        CBC_JWT_KEYSET_FILE: volume.file(),
        CBC_JWT_REFRESH_INTERVAL_SECONDS: '60',
        CBC_JWT_UNKNOWN_KID_COOLDOWN_SECONDS: '3600',
      },
    })
  })
  after(async () => {
    await service?.stop()
    fs.rmSync(root, { recursive: true, force: true })
  })

  it('before: the age series of the first key, no rotation, no backend error', async () => {
    const m = await service.metrics()
    const age = series(m, 'cbc_jwt_active_key_age_seconds')
    assert.deepEqual(
      age.map((s) => s.labels.kid),
      [keyA.kid],
    )
    assert.ok(Math.abs(age[0]!.value - 6 * 86_400) < 60)
    assert.equal(valueOf(m, 'cbc_jwt_key_rotations_total'), 0)
    assert.equal(valueOf(m, 'cbc_jwt_keys_loaded'), 1)
    assertNoBackendErrors(m)
    assert.equal((await whoami(legacyA)).status, 200)
  })

  it('rotation 1: new kid with age ≈ 0 within 2 s, old series gone, +1 rotation, 2 keys, legacy token accepted', async () => {
    await rotateAndVerify(keyB, [keyA], { rotations: 1, keysLoaded: 2 })
    const legacy = await whoami(legacyA)
    assert.equal(legacy.status, 200, legacy.body)
    assert.equal(legacy.json.kid, keyA.kid)
    const fresh = await whoami(signToken(keyB, validClaims()))
    assert.equal(fresh.status, 200, fresh.body)
    assert.equal((await service.get('/readyz')).json.current, keyB.kid)
  })

  it('rotation 2, after the first timestamped dir was deleted: the watch still works', async () => {
    const legacyB = signToken(keyB, validClaims({ sub: 'legacy-b' }))
    await rotateAndVerify(keyC, [keyB, keyA], { rotations: 2, keysLoaded: 3 })
    for (const [token, kid] of [
      [legacyA, keyA.kid],
      [legacyB, keyB.kid],
      [signToken(keyC, validClaims()), keyC.kid],
    ] as const) {
      const res = await whoami(token)
      assert.equal(res.status, 200, `${kid}: ${res.body}`)
      assert.equal(res.json.kid, kid)
    }
    assertNoBackendErrors(await service.metrics())
    const dirs = fs.readdirSync(volume.dir).filter((d) => /^\.\.\d/.test(d))
    assert.equal(dirs.length, 1, `only the newest timestamped dir should remain: ${dirs.join(', ')}`)
  })

  it('the log: each reload was triggered by the change watch, and names both kids of each rotation', async () => {
    const logs = await waitFor(
      () => {
        const all = service.logs()
        return all.filter((l) => l.event === 'key_rotated').length >= 2 && all
      },
      { what: 'two key_rotated log lines' },
    )
    const loads = logs.filter((l) => l.event === 'keyset_loaded')
    assert.deepEqual(
      loads.map((l) => [l.trigger, l.current]),
      [
        ['start', keyA.kid],
        ['change', keyB.kid],
        ['change', keyC.kid],
      ],
    )
    assert.deepEqual(
      logs.filter((l) => l.event === 'key_rotated').map((l) => [l.from, l.to]),
      [
        [keyA.kid, keyB.kid],
        [keyB.kid, keyC.kid],
      ],
    )
    assert.equal(logs.filter((l) => l.event === 'backend_error').length, 0)
  })
})
