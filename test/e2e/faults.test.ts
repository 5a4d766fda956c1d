// Failing safely, against the real service process: for each way the secret can go bad, the
// backend error counter rises under the right reason, valid tokens keep getting 200, /readyz
// stays 200, the log says what failed and never the content, and restoring a good keyset
// recovers (it loads, and the errors stop rising).
//
// Unreadable file: the tests run as root, and root reads through chmod 000 (CAP_DAC_OVERRIDE),
// so a read failure root cannot bypass stands in for it: a directory where the file should be
// (not_a_file) and a symlink loop (open → ELOOP, io_error). The EACCES →
// forbidden mapping is proven by test/lib/backends/file-backend.test.ts as an unprivileged child.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { BACKEND_ERROR_REASONS, type BackendErrorReason } from '../../src/lib/reasons.js'
import { KubeletVolume } from '../support/kubelet-volume.js'
import { makeKey, makeKeyset, signToken, validClaims, type TestKey } from '../support/keys.js'
import { valueOf } from '../support/metrics-text.js'
import { startService, type RunningService } from '../support/service.js'
import { waitFor } from '../support/wait.js'
import { assertNoPrivateMaterial } from '../lib/keyset/fixtures.js'

const HOUR = 3600_000
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-faults-'))
const secretDir = path.join(root, 'secrets')
let volume = new KubeletVolume(secretDir)
const base = makeKey('ES256', 'k-base')
const everyDocument: unknown[] = []
let service: RunningService
let generation = 0

/** A good keyset: a new current key, `base` kept as verify-only. Records it for the leak check. */
function goodKeyset(): { doc: Record<string, unknown>; current: TestKey } {
  const current = makeKey('ES256', `k-gen-${++generation}`)
  const doc = makeKeyset([
    { key: current, opts: { createdAt: new Date() } },
    { key: base, opts: { createdAt: new Date(Date.now() - HOUR), notAfter: new Date(Date.now() + 24 * HOUR) } },
  ])
  everyDocument.push(doc)
  return { doc, current }
}

async function errorsFor(reason: BackendErrorReason): Promise<number> {
  return valueOf(await service.metrics(), 'cbc_jwt_backend_errors_total', { reason }) ?? NaN
}

async function allErrors(): Promise<Record<string, number>> {
  const m = await service.metrics()
  return Object.fromEntries(BACKEND_ERROR_REASONS.map((r) => [r, valueOf(m, 'cbc_jwt_backend_errors_total', { reason: r }) ?? NaN]))
}

/** Publishes a timestamped dir the kubelet's way (..data swapped by rename); `populate` fills it. */
function publishStamp(name: string, populate: (file: string) => void) {
  const stamp = path.join(volume.dir, `..${name}`)
  fs.mkdirSync(stamp)
  populate(path.join(stamp, path.basename(volume.file())))
  fs.symlinkSync(`..${name}`, path.join(volume.dir, '..data_tmp'))
  fs.renameSync(path.join(volume.dir, '..data_tmp'), path.join(volume.dir, '..data'))
}

interface Fault {
  name: string
  reason: BackendErrorReason
  /** What the log's error field must mention. */
  logs: RegExp
  apply(): void
  /** Undo whatever `apply` did to the layout, before the good keyset is published again. */
  cleanup?(): void
}

const faults: Fault[] = [
  {
    name: 'corrupt JSON (half a keyset, with its private keys in it)',
    reason: 'invalid_json',
    logs: /not valid JSON/,
    apply() {
      const { doc } = goodKeyset()
      const text = JSON.stringify(doc)
      volume.writeKeyset(text.slice(0, Math.floor(text.length * 0.8)))
    },
  },
  {
    name: 'a keyset that fails the schema (unknown field, bad date)',
    reason: 'invalid_keyset',
    logs: /curent: unknown field/,
    apply() {
      const { doc } = goodKeyset()
      ;(doc.keys as Array<Record<string, unknown>>)[0]!.created_at = 'yesterday'
      volume.writeKeyset({ ...doc, curent: doc.current })
    },
  },
  {
    name: 'a keyset whose private part does not match its public part',
    reason: 'invalid_keyset',
    logs: /the private part does not match the public part/,
    apply() {
      // A deep copy: the entries share their JWK objects with the test keys.
      const doc = structuredClone(goodKeyset().doc)
      const keys = doc.keys as Array<{ jwk: Record<string, unknown> }>
      ;[keys[0]!.jwk.d, keys[1]!.jwk.d] = [keys[1]!.jwk.d, keys[0]!.jwk.d]
      volume.writeKeyset(doc)
    },
  },
  {
    name: 'the secret directory deleted',
    reason: 'not_found',
    logs: /ENOENT/,
    apply: () => volume.remove(),
    cleanup: () => void (volume = new KubeletVolume(secretDir)),
  },
  {
    name: 'unreadable: a directory in place of the file',
    reason: 'not_a_file',
    logs: /is a directory, not a regular file/,
    // Published the kubelet's way, so no reader ever sees a missing file in between.
    apply: () => publishStamp('fault_dir', (file) => fs.mkdirSync(file)),
  },
  {
    // Attack: a read that never ends. A FIFO blocks open() and read() until a writer comes.
    name: 'hostile: a FIFO in place of the file',
    reason: 'not_a_file',
    logs: /is a FIFO, not a regular file/,
    apply: () => publishStamp('fault_fifo', (file) => execFileSync('mkfifo', [file])),
  },
  {
    // Attack: a read that never stops growing, past the size check of stat() (st_size is 0).
    name: 'hostile: a symlink to /dev/zero',
    reason: 'not_a_file',
    logs: /is a character device, not a regular file/,
    apply: () => publishStamp('fault_zero', (file) => fs.symlinkSync('/dev/zero', file)),
  },
  {
    name: 'unreadable: a symlink loop (ELOOP)',
    reason: 'io_error',
    logs: /ELOOP/,
    apply() {
      // jwt-keyset -> jwt-keyset, swapped in by rename so the file is never just missing.
      const tmp = path.join(volume.dir, '..loop_tmp')
      fs.symlinkSync(path.basename(volume.file()), tmp)
      fs.renameSync(tmp, volume.file())
    },
    cleanup() {
      const tmp = path.join(volume.dir, '..loop_tmp')
      fs.symlinkSync(path.join('..data', path.basename(volume.file())), tmp)
      fs.renameSync(tmp, volume.file())
    },
  },
]

describe('the service fails safely and recovers', () => {
  const legacy = signToken(base, validClaims({ sub: 'steady-client' }))

  before(async () => {
    volume.writeKeyset(goodKeyset().doc)
    service = await startService({
      env: { CBC_JWT_KEYSET_FILE: volume.file(), CBC_JWT_REFRESH_INTERVAL_SECONDS: '1' },
    })
  })
  after(async () => {
    await service?.stop()
    fs.rmSync(root, { recursive: true, force: true })
  })

  for (const fault of faults) {
    it(`${fault.name} → ${fault.reason}`, async () => {
      const before = await allErrors()
      const inForce = (await service.get('/readyz')).json.current as string
      const logLines = service.logs().length
      fault.apply()

      // Errors rise under this reason, and keep rising while the fault lasts (1 s interval).
      await waitFor(async () => (await errorsFor(fault.reason)) >= before[fault.reason]! + 2, {
        timeoutMs: 4000,
        what: `cbc_jwt_backend_errors_total{reason="${fault.reason}"} to rise twice`,
      })
      const during = await allErrors()
      for (const r of BACKEND_ERROR_REASONS) {
        if (r !== fault.reason) assert.equal(during[r], before[r], `errors under ${r} rose too`)
      }
      // The last good keyset stays in force: ready, same current key, valid tokens accepted.
      const ready = await service.get('/readyz')
      assert.equal(ready.status, 200)
      assert.equal(ready.json.current, inForce)
      const res = await service.get('/v1/whoami', { authorization: `Bearer ${legacy}` })
      assert.equal(res.status, 200, res.body)
      // A token with an unknown kid triggers a re-read of the broken secret: it is answered.
      const started = Date.now()
      const unknown = await service.get('/v1/whoami', { authorization: `Bearer ${signToken(makeKey('ES256', `k-unknown-${generation}`), validClaims())}` })
      assert.equal(unknown.status, 401, unknown.body)
      assert.equal(unknown.json.reason, 'unknown_kid')
      assert.ok(Date.now() - started < 3000, `the unknown-kid request took ${Date.now() - started} ms`)
      // The log says what failed, where, and what stays in force.
      const errorsLogged = await waitFor(
        () => {
          const logged = service
            .logs()
            .slice(logLines)
            .filter((l) => l.event === 'backend_error')
          return logged.length >= 2 && logged
        },
        { what: 'two backend_error log lines' },
      )
      for (const l of errorsLogged) {
        assert.equal(l.reason, fault.reason)
        assert.equal(l.location, volume.file())
        assert.equal(l.keeping, inForce)
        assert.match(String(l.error), fault.logs)
      }
      assertNoPrivateMaterial(service.output(), everyDocument, 'the service output')

      // Restore: a new good keyset loads, and the errors stop rising.
      fault.cleanup?.()
      const { doc, current } = goodKeyset()
      volume.writeKeyset(doc)
      await waitFor(async () => (await service.get('/readyz')).json.current === current.kid, {
        timeoutMs: 3000,
        what: `the restored keyset (${current.kid}) to load`,
      })
      const settled = await errorsFor(fault.reason)
      // Two more good interval reads (the last-success time moves twice): a read that began after
      // this point succeeded, so a fault still in force would have been counted by then.
      const lastSuccess = async () => valueOf(await service.metrics(), 'cbc_jwt_keyset_last_success_timestamp_seconds') ?? 0
      for (let reads = 0, seen = await lastSuccess(); reads < 2; reads++) {
        const previous = seen
        await waitFor(async () => (seen = await lastSuccess()) > previous, { timeoutMs: 10_000, what: 'a good interval read after the restore' })
      }
      assert.equal(await errorsFor(fault.reason), settled, 'errors still rising after the restore')
      const fresh = await service.get('/v1/whoami', { authorization: `Bearer ${signToken(current, validClaims())}` })
      assert.equal(fresh.status, 200, fresh.body)
    })
  }

  it('the process kept serving throughout, and never logged key material', async () => {
    assert.equal(service.process.exitCode, null)
    assert.equal((await service.get('/healthz')).status, 200)
    assertNoPrivateMaterial(service.output(), everyDocument, 'the service output')
  })

  it('SIGTERM stops the process while a FIFO stands at the keyset path', async () => {
    publishStamp('fault_fifo_last', (file) => execFileSync('mkfifo', [file]))
    await waitFor(async () => (await errorsFor('not_a_file')) > 0, { what: 'the FIFO to be seen' })
    const exited = new Promise<number | null>((resolve) => service.process.once('exit', (code) => resolve(code)))
    service.process.kill('SIGTERM')
    const code = await Promise.race([exited, sleep(5000).then(() => 'still running' as const)])
    assert.equal(code, 0)
  })
})
