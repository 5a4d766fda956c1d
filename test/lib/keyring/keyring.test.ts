import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, beforeEach, describe, it, mock } from 'node:test'
import type { KeysetBackend } from '../../../src/lib/backends/backend.js'
import { createFileBackend } from '../../../src/lib/backends/file-backend.js'
import { BackendError } from '../../../src/lib/errors.js'
import { createKeyring, type Keyring, type KeyringOptions } from '../../../src/lib/keyring/keyring.js'
import type { BackendErrorReason } from '../../../src/lib/reasons.js'
import { makeKey, makeKeyset } from '../../support/keys.js'
import { waitFor } from '../../support/wait.js'
import { assertNoPrivateMaterial } from '../keyset/fixtures.js'

const T0 = Date.parse('2026-11-25T21:16:00Z')
const HOUR = 3600_000
const keyA = makeKey('ES256', 'k-a')
const keyB = makeKey('ES256', 'k-b')
const keyC = makeKey('EdDSA', 'k-c')

/** A keyset current A; the documents are made at the injected clock's T0. */
const docA = () => makeKeyset([{ key: keyA, opts: { createdAt: new Date(T0 - HOUR) } }])
/** Rotated: B current, A retiring at T0 + 24h. */
const docB = () =>
  makeKeyset([
    { key: keyB, opts: { createdAt: new Date(T0) } },
    { key: keyA, opts: { createdAt: new Date(T0 - HOUR), notAfter: new Date(T0 + 24 * HOUR) } },
  ])
const ALL_DOCS = { keys: [docA(), docB(), makeKeyset([keyC])] }

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-keyring-'))
after(() => fs.rmSync(root, { recursive: true, force: true }))

interface Harness {
  file: string
  keyring: Keyring
  clock: { t: number }
  reads: () => number
  errors: BackendErrorReason[]
  rotations: Array<[string, string]>
  loads: string[]
  logs: Array<{ level: string; obj: Record<string, unknown>; msg: string }>
  write(doc: unknown): void
}

let n = 0
/**
 * A keyring on a real file backend in a fresh temp dir, with an injected clock, a read counter
 * around the backend and every event and log line recorded. `wrap` may decorate the backend.
 */
function harness(opts: { wrap?: (b: KeysetBackend) => KeysetBackend; keyring?: Partial<KeyringOptions> } = {}): Harness {
  const dir = path.join(root, `case-${n++}`)
  fs.mkdirSync(dir)
  const file = path.join(dir, 'keyset.json')
  const file_ = createFileBackend(file)
  let count = 0
  const counted: KeysetBackend = {
    kind: file_.kind,
    location: file_.location,
    read: () => {
      count++
      return file_.read()
    },
    write: (t, v) => file_.write(t, v),
    watch: (cb) => file_.watch!(cb),
    close: () => file_.close(),
  }
  const clock = { t: T0 }
  const h: Omit<Harness, 'keyring'> = {
    file,
    clock,
    reads: () => count,
    errors: [],
    rotations: [],
    loads: [],
    logs: [],
    write: (doc) => fs.writeFileSync(file, typeof doc === 'string' ? doc : JSON.stringify(doc)),
  }
  const log = (level: string) => (obj: object, msg: string) => void h.logs.push({ level, obj: obj as Record<string, unknown>, msg })
  const keyring = createKeyring({
    backend: opts.wrap ? opts.wrap(counted) : counted,
    logger: { info: log('info'), warn: log('warn'), error: log('error') },
    now: () => clock.t,
    refreshIntervalMs: 3_600_000,
    unknownKidCooldownMs: 10_000,
    events: {
      onBackendError: (r) => void h.errors.push(r),
      onRotation: (from, to) => void h.rotations.push([from, to]),
      onLoad: (ks) => void h.loads.push(ks.current.kid),
    },
    ...opts.keyring,
  })
  return { ...h, keyring }
}

describe('keyring: loading', () => {
  it('first load: ready, the keyset in force, a load event, no rotation', async () => {
    const h = harness()
    h.write(docA())
    assert.equal(h.keyring.ready(), false)
    assert.equal(h.keyring.keyset(), undefined)
    await h.keyring.refresh('start')
    assert.equal(h.keyring.ready(), true)
    assert.equal(h.keyring.keyset()!.current.kid, 'k-a')
    assert.deepEqual(h.loads, ['k-a'])
    assert.deepEqual(h.rotations, [])
    assert.equal(h.keyring.lastSuccessAt(), T0)
    assert.deepEqual(
      h.logs.map((l) => l.obj.event),
      ['keyset_loaded'],
    )
    assert.equal(h.logs[0]!.obj.trigger, 'start')
  })

  it('a failure before the first load: not ready, an error counted, and the log says nothing is loaded', async () => {
    const h = harness()
    await h.keyring.refresh('start')
    assert.equal(h.keyring.ready(), false)
    assert.deepEqual(h.errors, ['not_found'])
    assert.equal(h.logs[0]!.obj.keeping, null)
    assert.match(h.logs[0]!.msg, /no keyset loaded yet/)
    assert.equal(h.keyring.lastSuccessAt(), undefined)
  })

  it('an unchanged document (same version) is read but not reloaded: no load event, lastSuccessAt moves', async () => {
    const h = harness()
    h.write(docA())
    await h.keyring.refresh()
    const first = h.keyring.keyset()
    h.clock.t += 5000
    h.write(docA()) // same bytes, new mtime
    await h.keyring.refresh()
    assert.equal(h.reads(), 2)
    assert.deepEqual(h.loads, ['k-a'])
    assert.equal(h.keyring.keyset(), first)
    assert.equal(h.keyring.lastSuccessAt(), T0 + 5000)
  })
})

describe('keyring: rotation events', () => {
  it('only when current changes to another kid: not on the first load, not on a reload with the same current', async () => {
    const h = harness()
    h.write(docA())
    await h.keyring.refresh()
    // Same current, one more (staged) key: a reload, not a rotation.
    h.write(makeKeyset([{ key: keyA, opts: { createdAt: new Date(T0 - HOUR) } }, keyB]))
    await h.keyring.refresh()
    assert.deepEqual(h.loads, ['k-a', 'k-a'])
    assert.deepEqual(h.rotations, [])
    h.write(docB())
    await h.keyring.refresh()
    assert.deepEqual(h.rotations, [['k-a', 'k-b']])
    await h.keyring.refresh()
    assert.deepEqual(h.rotations, [['k-a', 'k-b']])
    assert.ok(h.logs.some((l) => l.obj.event === 'key_rotated' && l.obj.from === 'k-a' && l.obj.to === 'k-b'))
  })
})

describe('keyring: the last good keyset stays on every failure', () => {
  // As root (the CI runs tests as root), chmod 000 does not stop a read: CAP_DAC_OVERRIDE
  // bypasses the mode bits. The unreadable cases therefore use failures root cannot read
  // through — a directory where the file should be (not_a_file) and a symlink loop (ELOOP,
  // io_error) — and `forbidden` is exercised with chmod 000 only when not root; the mapping of
  // EACCES to forbidden is proven as an unprivileged child in test/lib/backends/file-backend.test.ts,
  // and here by a backend that reports it.
  const isRoot = process.getuid?.() === 0
  const good = () => JSON.stringify(docA())
  const faults: Array<{ name: string; reason: BackendErrorReason; apply(h: Harness): void; skip?: string | false }> = [
    { name: 'file missing', reason: 'not_found', apply: (h) => fs.rmSync(h.file) },
    { name: 'directory deleted', reason: 'not_found', apply: (h) => fs.rmSync(path.dirname(h.file), { recursive: true }) },
    {
      name: 'a directory in place of the file',
      reason: 'not_a_file',
      apply: (h) => {
        fs.rmSync(h.file)
        fs.mkdirSync(h.file)
      },
    },
    {
      name: 'a symlink loop (ELOOP)',
      reason: 'io_error',
      apply: (h) => {
        fs.rmSync(h.file)
        fs.symlinkSync(path.basename(h.file), h.file)
      },
    },
    { name: 'chmod 000', reason: 'forbidden', apply: (h) => fs.chmodSync(h.file, 0), skip: isRoot && 'root reads through mode 000' },
    { name: 'not JSON', reason: 'invalid_json', apply: (h) => h.write(good().replace('{', '{{')) },
    { name: 'half a document (a partial write)', reason: 'invalid_json', apply: (h) => h.write(good().slice(0, good().length / 2)) },
    { name: 'an empty file', reason: 'invalid_json', apply: (h) => h.write('') },
    {
      name: 'a schema error (unknown field)',
      reason: 'invalid_keyset',
      apply: (h) => h.write({ ...docB(), kyes: [] }),
    },
    {
      name: 'a semantic error (a public-only current among private keys: neither signing nor verification)',
      reason: 'invalid_keyset',
      apply: (h) => h.write(makeKeyset([{ ...keyB, jwk: { kty: 'EC', crv: 'P-256', x: keyB.jwk.x!, y: keyB.jwk.y! } }, keyA])),
    },
  ]
  for (const f of faults) {
    it(`${f.name} → ${f.reason}`, { skip: f.skip ?? false }, async () => {
      const h = harness()
      h.write(docA())
      await h.keyring.refresh()
      const inForce = h.keyring.keyset()
      f.apply(h)
      h.clock.t += 1000
      await h.keyring.refresh()
      assert.equal(h.keyring.keyset(), inForce, 'the keyset in force was replaced')
      assert.equal(h.keyring.ready(), true)
      assert.deepEqual(h.errors, [f.reason])
      assert.equal(h.keyring.lastSuccessAt(), T0, 'a failed read is not a success')
      const err = h.logs.find((l) => l.obj.event === 'backend_error')!
      assert.equal(err.obj.reason, f.reason)
      assert.equal(err.obj.keeping, 'k-a')
      assert.equal(err.obj.location, h.file)
      assert.match(err.msg, /last good keyset stays in force/)
      assertNoPrivateMaterial(JSON.stringify(h.logs), ALL_DOCS, 'the log')
      // Restoring a good document recovers.
      fs.rmSync(path.dirname(h.file), { recursive: true, force: true })
      fs.mkdirSync(path.dirname(h.file))
      h.write(docB())
      await h.keyring.refresh()
      assert.equal(h.keyring.keyset()!.current.kid, 'k-b')
      assert.deepEqual(h.errors, [f.reason])
    })
  }

  it('a backend that reports forbidden (EACCES, Vault 403) → forbidden; a plain Error → io_error', async () => {
    let fail: Error | undefined
    const h = harness({
      wrap: (b) => ({ ...b, read: () => (fail ? Promise.reject(fail) : b.read()) }),
    })
    h.write(docA())
    await h.keyring.refresh()
    fail = new BackendError('forbidden', `cannot read ${h.file}: EACCES`)
    await h.keyring.refresh()
    fail = new Error('something odd')
    await h.keyring.refresh()
    assert.deepEqual(h.errors, ['forbidden', 'io_error'])
    assert.equal(h.keyring.keyset()!.current.kid, 'k-a')
  })

  // A custom KeysetBackend (createCbcJwt({ backend })) written in JavaScript that reads a
  // missing field (`text: undefined`) or hands back the parsed object: a failed read, never a
  // TypeError out of refresh() — the interval's refresh is not awaited, so that crashed the API.
  it('a backend whose read() answers no keyset text → bad_response, the last good kept, nothing thrown', async () => {
    let answer: unknown
    const h = harness({
      wrap: (b) => ({ ...b, read: () => (answer === undefined ? b.read() : Promise.resolve(answer as never)) }),
    })
    await assert.doesNotReject(
      (async () => {
        answer = { text: undefined, version: '1' }
        await h.keyring.refresh('start')
        assert.equal(h.keyring.ready(), false)
        answer = undefined
        h.write(docA())
        await h.keyring.refresh()
        for (const bad of [{ text: docA(), version: '2' }, { version: '3' }, null, 'text']) {
          answer = bad
          await h.keyring.refresh()
        }
      })(),
    )
    assert.deepEqual(h.errors, ['bad_response', 'bad_response', 'bad_response', 'bad_response', 'bad_response'])
    assert.equal(h.keyring.keyset()!.current.kid, 'k-a')
    const line = h.logs.find((l) => l.obj.event === 'backend_error')!
    assert.match(String(line.obj.error), /read\(\) answered no keyset text/)
  })
  // The drill: "nothing logs that a replica recovered" — when did the incident end, here?
  it('the first good read after failures logs backend_recovered once: how many reads failed, why, since when', async () => {
    let fail: Error | undefined
    const h = harness({ wrap: (b) => ({ ...b, read: () => (fail ? Promise.reject(fail) : b.read()) }) })
    h.write(docA())
    await h.keyring.refresh()
    fail = new BackendError('forbidden', `cannot read ${h.file}: EACCES`)
    h.clock.t = T0 + 30_000
    await h.keyring.refresh()
    h.clock.t = T0 + 60_000
    fail = new BackendError('not_found', `${h.file} is missing`)
    await h.keyring.refresh()
    fail = undefined
    h.clock.t = T0 + 90_000
    await h.keyring.refresh() // the same document: not reloaded, but readable again
    h.clock.t = T0 + 120_000
    await h.keyring.refresh()
    const recovered = h.logs.filter((l) => l.obj.event === 'backend_recovered')
    assert.equal(recovered.length, 1, 'once per incident')
    assert.deepEqual(recovered[0]!.obj, {
      event: 'backend_recovered',
      trigger: 'interval',
      location: h.file,
      failed_reads: 2,
      reasons: ['forbidden', 'not_found'],
      failing_since: new Date(T0 + 30_000).toISOString(),
      failing_for_seconds: 60,
      current: 'k-a',
    })
    assert.equal(recovered[0]!.level, 'info')
    // The runbook: after a restore of the same document, backend_recovered is the only line.
    assert.equal(h.logs.filter((l) => l.obj.event === 'keyset_loaded').length, 1, 'the same document is not loaded again')
  })

  it('keyset_loaded names the staged and verify-only kids and revoked_before', async () => {
    const h = harness()
    const staged = makeKey('ES256', 'k-staged')
    h.write({
      ...makeKeyset([
        { key: keyB, opts: { createdAt: new Date(T0) } },
        { key: keyA, opts: { createdAt: new Date(T0 - HOUR), notAfter: new Date(T0 + 24 * HOUR) } },
        { key: staged, opts: { createdAt: new Date(T0) } },
      ]),
      revoked_before: '2026-11-25T20:00:00Z',
    })
    await h.keyring.refresh()
    const loaded = h.logs.find((l) => l.obj.event === 'keyset_loaded')!.obj
    assert.deepEqual([loaded.current, loaded.staged, loaded.verify_only, loaded.revoked_before], ['k-b', ['k-staged'], ['k-a'], '2026-11-25T20:00:00Z'])
    assert.equal(h.logs.filter((l) => l.obj.event === 'backend_recovered').length, 0, 'a first load is no recovery')
  })

  it('validate, then swap: a half-written document never loads, the whole one does', async () => {
    const h = harness()
    h.write(docA())
    await h.keyring.refresh()
    const text = JSON.stringify(docB(), null, 2)
    for (const cut of [0.25, 0.5, 0.75, 0.99]) {
      h.write(text.slice(0, Math.floor(text.length * cut)))
      await h.keyring.refresh()
      assert.equal(h.keyring.keyset()!.current.kid, 'k-a', `a document cut at ${cut} was loaded`)
    }
    h.write(text)
    await h.keyring.refresh()
    assert.equal(h.keyring.keyset()!.current.kid, 'k-b')
    assert.deepEqual(h.errors, ['invalid_json', 'invalid_json', 'invalid_json', 'invalid_json'])
  })
})

describe('keyring: reads', () => {
  /** Wraps the backend so that reads wait until `release()`: every caller overlaps one read. */
  function gated() {
    let open!: () => void
    let gate = new Promise<void>((r) => (open = r))
    const g = {
      /** Reads that have reached the gate. */
      entered: 0,
      wrap: (b: KeysetBackend): KeysetBackend => ({ ...b, read: async () => (g.entered++, await gate, b.read()) }),
      release: () => open(),
      reset: () => void (gate = new Promise<void>((r) => (open = r))),
    }
    return g
  }

  it('single-flight: 25 concurrent refresh() calls make one read', async () => {
    const g = gated()
    const h = harness({ wrap: g.wrap })
    h.write(docA())
    const calls = Array.from({ length: 25 }, () => h.keyring.refresh())
    await waitFor(() => g.entered === 1, { intervalMs: 1, what: 'the read to start' })
    g.release()
    await Promise.all(calls)
    assert.equal(h.reads(), 1)
    assert.deepEqual(h.loads, ['k-a'])
  })

  it('a change event during a read causes exactly one more read after it (the change may be newer)', async () => {
    const g = gated()
    const h = harness({ wrap: g.wrap })
    h.write(docA())
    const first = h.keyring.refresh('interval')
    await waitFor(() => g.entered === 1, { intervalMs: 1, what: 'the read to start' })
    h.write(docB())
    const changes = Array.from({ length: 5 }, () => h.keyring.refresh('change'))
    g.release()
    await Promise.all([first, ...changes])
    assert.equal(h.reads(), 2)
    assert.equal(h.keyring.keyset()!.current.kid, 'k-b')
  })

  it('unknown kid: one read per cooldown window, however many tokens ask', async () => {
    const h = harness()
    h.write(docA())
    await h.keyring.refresh('start')
    const before = h.reads()
    await Promise.all(Array.from({ length: 50 }, () => h.keyring.refreshForUnknownKid()))
    for (let i = 0; i < 50; i++) await h.keyring.refreshForUnknownKid()
    assert.equal(h.reads() - before, 1)
    h.clock.t += 9_999
    for (let i = 0; i < 20; i++) await h.keyring.refreshForUnknownKid()
    assert.equal(h.reads() - before, 1, 'read again before the cooldown had passed')
    h.clock.t += 1
    for (let i = 0; i < 20; i++) await h.keyring.refreshForUnknownKid()
    assert.equal(h.reads() - before, 2)
  })

  it('unknown kid: a wall clock stepped back does not hold the re-read until it catches up', async () => {
    const h = harness()
    h.write(docA())
    await h.keyring.refresh('start')
    await h.keyring.refreshForUnknownKid()
    const before = h.reads()
    // NTP steps the clock back an hour; then the keyset rotates.
    h.clock.t -= HOUR
    h.write(docB())
    await h.keyring.refreshForUnknownKid()
    assert.equal(h.reads() - before, 1, 'no re-read for an hour after the clock stepped back')
    assert.equal(h.keyring.keyset()!.current.kid, 'k-b')
    // The bound holds from the new time on: one read per cooldown.
    for (let i = 0; i < 20; i++) await h.keyring.refreshForUnknownKid()
    assert.equal(h.reads() - before, 1)
    h.clock.t += 10_000
    await h.keyring.refreshForUnknownKid()
    assert.equal(h.reads() - before, 2)
  })

  it('unknown kid: a re-read picks up a rotation the watch has not delivered', async () => {
    const h = harness()
    h.write(docA())
    await h.keyring.refresh('start')
    h.write(docB())
    await h.keyring.refreshForUnknownKid()
    assert.equal(h.keyring.keyset()!.current.kid, 'k-b')
    assert.equal(h.logs.at(-2)!.obj.trigger, 'unknown_kid')
  })
})

describe('keyring: verifyingKeys', () => {
  it('a key past not_after drops out at that instant, by the injected clock', async () => {
    const h = harness()
    h.write(docB())
    await h.keyring.refresh()
    const notAfter = T0 + 24 * HOUR
    const kids = (at?: number) =>
      h.keyring
        .verifyingKeys(at)
        .map((k) => k.kid)
        .sort()
    assert.deepEqual(kids(notAfter - 1), ['k-a', 'k-b'])
    assert.deepEqual(kids(notAfter), ['k-b'])
    h.clock.t = notAfter - 1
    assert.deepEqual(kids(), ['k-a', 'k-b'])
    h.clock.t = notAfter
    assert.deepEqual(kids(), ['k-b'])
  })

  it('none before the first load', () => {
    assert.deepEqual(harness().keyring.verifyingKeys(), [])
  })
})

describe('keyring: the interval read after a failed read', () => {
  it('a failing backend is read again after a minute, not the (600 s) interval; a good read goes back to it', async (t) => {
    // JWTSecretsBackendErrors fires while cbc_jwt_backend_errors_total rose in the last 5
    // minutes: with one failed read per 600 s interval (Vault has no watch) an outage that
    // never ended resolved the page and fired it again every cycle, and its end was seen only
    // at the next interval.
    t.after(() => mock.timers.reset())
    mock.timers.enable({ apis: ['setTimeout'] })
    let broken = true
    let reads = 0
    const errors: BackendErrorReason[] = []
    const text = JSON.stringify(docA())
    const keyring = createKeyring({
      backend: {
        kind: 'vault',
        location: 'in memory',
        read: async () => {
          reads++
          if (broken) throw new BackendError('unreachable', 'no answer')
          return { text, version: '1' }
        },
        write: () => Promise.reject(new Error('read only')),
        close: async () => {},
      },
      logger: { info() {}, warn() {}, error() {} },
      now: () => T0,
      refreshIntervalMs: 600_000,
      events: { onBackendError: (r) => void errors.push(r) },
    })
    // Timers are mocked: let the read's continuations (and the re-arming after it) run.
    const settle = async () => {
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
    }
    const tick = async (ms: number) => {
      mock.timers.tick(ms)
      await settle()
    }
    await keyring.start()
    await settle()
    assert.deepEqual([reads, errors.length], [1, 1])
    await tick(59_999)
    assert.equal(reads, 1, 'read again before the minute')
    await tick(1)
    assert.deepEqual([reads, errors.length], [2, 2], 'a failed read: the next interval read comes after a minute')
    await tick(60_000)
    assert.deepEqual([reads, errors.length], [3, 3], 'and again a minute later while the outage lasts')
    broken = false
    await tick(60_000)
    assert.equal(reads, 4)
    assert.equal(keyring.keyset()?.current.kid, 'k-a', 'recovery seen within a minute')
    await tick(599_999)
    assert.equal(reads, 4, 'after a good read, back to the interval')
    await tick(1)
    assert.equal(reads, 5)
    // An outage first seen by another read (a change, an unknown kid) brings the next interval
    // read forward too, rather than leaving it up to 600 s away.
    broken = true
    await tick(100_000)
    await keyring.refresh('change')
    await settle()
    assert.equal(reads, 6)
    await tick(60_000)
    assert.equal(reads, 7)
    await keyring.close()
    await tick(600_000)
    assert.equal(reads, 7, 'read after close')
  })
})

describe('keyring: start and close', () => {
  let h: Harness
  beforeEach(() => {
    h = harness()
  })

  it('start() loads, then the change watch reloads without waiting for the (1 h) interval', async () => {
    h.write(docA())
    await h.keyring.start()
    assert.equal(h.keyring.keyset()!.current.kid, 'k-a')
    h.write(docB())
    await waitFor(() => h.keyring.keyset()!.current.kid === 'k-b', { timeoutMs: 10_000, what: 'reload on change' })
    assert.ok(h.logs.some((l) => l.obj.event === 'keyset_loaded' && l.obj.trigger === 'change'))
    await h.keyring.close()
  })

  it('close() stops the watch and the interval; the keyset stays readable', async () => {
    const fast = harness({ keyring: { refreshIntervalMs: 20 } })
    fast.write(docA())
    await fast.keyring.start()
    await fast.keyring.close()
    const reads = fast.reads()
    // A twin left open on the same file, with the same interval, shows how long "nothing
    // happened" has to last: it takes the change and three interval reads after it, by which
    // time a watch or a timer the closed keyring had left would have read too.
    let twinReads = 0
    const file = createFileBackend(fast.file)
    const twin = createKeyring({
      backend: {
        kind: file.kind,
        location: file.location,
        read: () => (twinReads++, file.read()),
        write: (t, v) => file.write(t, v),
        watch: (cb) => file.watch!(cb),
        close: () => file.close(),
      },
      logger: { info() {}, warn() {}, error() {} },
      refreshIntervalMs: 20,
    })
    await twin.start()
    fast.write(docB())
    await waitFor(() => twin.keyset()?.current.kid === 'k-b', { what: 'the twin to take the change' })
    const after = twinReads
    await waitFor(() => twinReads >= after + 3, { what: 'three interval reads of the twin' })
    await twin.close()
    assert.equal(fast.reads(), reads, 'read after close')
    assert.equal(fast.keyring.keyset()!.current.kid, 'k-a')
  })

  it('start() after close() arms nothing: no read, no watch, no interval left behind', async () => {
    // An app shut down while it was still booting closes the instance before it starts it: the
    // interval that start() armed then was never cleared, and a closed keyring read its
    // backend forever.
    const closed = harness({ keyring: { refreshIntervalMs: 20 } })
    closed.write(docA())
    await closed.keyring.close()
    await closed.keyring.start()
    const twin = harness({ keyring: { refreshIntervalMs: 20 } })
    twin.write(docA())
    await twin.keyring.start()
    closed.write(docB())
    twin.write(docB())
    await waitFor(() => twin.keyring.keyset()?.current.kid === 'k-b', { what: 'the twin to take the change' })
    const after = twin.reads()
    await waitFor(() => twin.reads() >= after + 3, { what: 'three interval reads of the twin' })
    await twin.keyring.close()
    assert.equal(closed.reads(), 0, 'a closed keyring read its backend')
    assert.equal(closed.keyring.ready(), false)
  })

  it('nothing keeps a process alive: a started keyring lets node exit', () => {
    h.write(docA())
    const script = `
      import { createKeyring } from ${JSON.stringify(new URL('../../../src/lib/keyring/keyring.ts', import.meta.url).href)}
      import { createFileBackend } from ${JSON.stringify(new URL('../../../src/lib/backends/file-backend.ts', import.meta.url).href)}
      const log = { info() {}, warn() {}, error() {} }
      const k = createKeyring({ backend: createFileBackend(${JSON.stringify(h.file)}), logger: log, refreshIntervalMs: 50 })
      await k.start()
      if (!k.ready()) process.exit(3)
    `
    // Exits by itself (a live timer or watcher would hold it until the timeout: 60 s, for a
    // loaded machine's tsx start-up).
    execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      timeout: 60_000,
      stdio: 'pipe',
      cwd: fileURLToPath(new URL('../../..', import.meta.url)),
    })
  })
})
