// A pod that starts before its secret volume has anything in it (or before the directory
// exists): the process is alive but not ready, counts not_found, generates NOTHING, and
// becomes ready as soon as the volume appears — through the watch on the nearest existing
// ancestor, since the refresh interval (60 s) is far too long to explain it.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { KubeletVolume } from '../support/kubelet-volume.js'
import { makeKey, makeKeyset } from '../support/keys.js'
import { series, valueOf } from '../support/metrics-text.js'
import { PROJECT_ROOT, startService, type RunningService } from '../support/service.js'
import { waitFor } from '../support/wait.js'

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-cold-'))
const cwd = path.join(root, 'cwd')
fs.mkdirSync(cwd)
/** Two levels below `root` are missing at start. */
const secretDir = path.join(root, 'var', 'run', 'secrets')
const keysetFile = path.join(secretDir, 'jwt-keyset')
/** The dev keyset location is derived from the module's location, not from the cwd. */
const DEV_DIR = path.join(PROJECT_ROOT, '.cbc-jwt')
const key = makeKey('ES256', 'k-cold-1')
let service: RunningService

/** Existence, inode, mtime and content of a path, to prove it was not touched. */
function snapshot(p: string): string {
  try {
    const st = fs.statSync(p)
    const content = st.isDirectory() ? fs.readdirSync(p).sort().join(',') : fs.readFileSync(p, 'base64')
    return JSON.stringify({ ino: st.ino, mtimeMs: st.mtimeMs, content })
  } catch {
    return 'absent'
  }
}
const devBefore = { dir: snapshot(DEV_DIR), file: snapshot(path.join(DEV_DIR, 'dev-keyset.json')) }

describe('cold start with the secret directory missing', () => {
  before(async () => {
    service = await startService({
      cwd,
      waitFor: 'alive',
      env: { CBC_JWT_KEYSET_FILE: keysetFile, CBC_JWT_REFRESH_INTERVAL_SECONDS: '60' },
    })
  })
  after(async () => {
    await service?.stop()
    fs.rmSync(root, { recursive: true, force: true })
  })

  it('alive, not ready, and not_found counted', async () => {
    assert.equal((await service.get('/healthz')).status, 200)
    await waitFor(async () => (valueOf(await service.metrics(), 'cbc_jwt_backend_errors_total', { reason: 'not_found' }) ?? 0) > 0, {
      timeoutMs: 3000,
      what: 'cbc_jwt_backend_errors_total{reason="not_found"} > 0',
    })
    const ready = await service.get('/readyz')
    assert.equal(ready.status, 503)
    assert.equal(ready.json.status, 'not_ready')
    const m = await service.metrics()
    assert.equal(valueOf(m, 'cbc_jwt_keys_loaded'), 0)
    assert.equal(valueOf(m, 'cbc_jwt_active_key_age_seconds'), undefined)
    // CONTRACT §6/§7: with no keyset loaded every token gets 503 not_ready, and none is counted.
    const res = await service.get('/v1/whoami', { authorization: 'Bearer a.b.c' })
    assert.equal(res.status, 503)
    assert.deepEqual(res.json, { error: 'temporarily_unavailable', reason: 'not_ready' })
    const failures = series(await service.metrics(), 'cbc_jwt_auth_failures_total')
    assert.equal(
      failures.reduce((sum, s) => sum + s.value, 0),
      0,
      'a not_ready answer was counted as an auth failure',
    )
    // Nothing to publish yet: not an empty JWK Set a relying party or a CDN would cache for a
    // minute. The same 503 as a token gets, so a client handles one shape of "not yet".
    for (const route of ['/.well-known/jwks.json', '/v1/keys']) {
      const published = await service.get(route)
      assert.equal(published.status, 503, route)
      assert.deepEqual(published.json, { error: 'temporarily_unavailable', reason: 'not_ready' }, route)
      assert.equal(published.headers.get('cache-control'), 'no-store', route)
      assert.equal(published.headers.get('retry-after'), '1', route)
    }
    const logged = await waitFor(() => service.logs().find((l) => l.event === 'backend_error'), { what: 'a backend_error log line' })
    assert.equal(logged.reason, 'not_found')
    assert.equal(logged.location, keysetFile)
  })

  it('generates nothing: no file at the path, no .cbc-jwt under the cwd, the project dev keyset untouched', () => {
    assert.equal(fs.existsSync(path.join(root, 'var')), false, 'something created the secret directory')
    assert.deepEqual(fs.readdirSync(cwd), [], 'something was written under the cwd')
    assert.equal(snapshot(DEV_DIR), devBefore.dir, `${DEV_DIR} changed`)
    assert.equal(snapshot(path.join(DEV_DIR, 'dev-keyset.json')), devBefore.file, 'the project dev keyset changed')
    assert.equal(service.logs().filter((l) => l.event === 'dev_keyset').length, 0)
  })

  it('the volume appears → ready within 2 s (watch on the ancestor; the interval is 60 s)', async () => {
    const volume = new KubeletVolume(secretDir)
    volume.writeKeyset(makeKeyset([key]))
    await waitFor(async () => (await service.get('/readyz')).status === 200, { timeoutMs: 2000, what: '/readyz 200' })
    assert.equal((await service.get('/readyz')).json.current, key.kid)
    const loaded = await waitFor(
      () => {
        const lines = service.logs().filter((l) => l.event === 'keyset_loaded')
        return lines.length > 0 && lines
      },
      { what: 'the keyset_loaded log line' },
    )
    assert.deepEqual(
      loaded.map((l) => l.trigger),
      ['change'],
    )
    // …and the watch now sits on the secret directory itself: a rotation is seen too.
    const next = makeKey('ES256', 'k-cold-2')
    volume.writeKeyset(makeKeyset([next, key]))
    await waitFor(async () => (await service.get('/readyz')).json.current === next.kid, { timeoutMs: 2000, what: 'the rotation' })
  })

  it('still nothing generated anywhere', () => {
    assert.deepEqual(fs.readdirSync(cwd), [])
    assert.equal(snapshot(DEV_DIR), devBefore.dir)
    assert.equal(snapshot(path.join(DEV_DIR, 'dev-keyset.json')), devBefore.file)
  })
})
