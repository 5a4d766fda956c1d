import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import type { KeysetBackend } from '../../../src/lib/backends/backend.js'
import { createFileBackend } from '../../../src/lib/backends/file-backend.js'
import { createKeyring, type Keyring } from '../../../src/lib/keyring/keyring.js'
import { makeKey, makeKeyset } from '../../support/keys.js'

// The regression of a one-step rotation on a shared volume: the signer switches the moment the
// file is written, so the new kid's first tokens arrive while the change event is still inside
// the watch's coalescing window, or while a read that began before the write is in flight.
// A token with an unknown kid must get the answer of a read that began after every change
// event it could have seen; forged kids still cost one read per cooldown when nothing changed.

const T0 = Date.parse('2026-11-25T21:16:00Z')
const keys = ['k-0', 'k-1', 'k-2', 'k-3'].map((kid) => makeKey('ES256', kid))
const doc = (i: number) => JSON.stringify(makeKeyset([{ key: keys[i % keys.length]!, opts: { createdAt: new Date(T0 - 1000) } }]))
const silent = { info() {}, warn() {}, error() {} }

/** A backend in memory: the test writes the document, fires events and holds reads at a gate. */
function memoryBackend() {
  let text = doc(0)
  let version = 0
  let reads = 0
  const gates: Array<() => void> = []
  let holding = false
  let onChange: (() => void) | undefined
  let onEvent: (() => void) | undefined
  const backend: KeysetBackend = {
    kind: 'memory',
    location: 'memory',
    async read() {
      reads++
      // The content is taken when the read begins; a held read answers with it later.
      const snapshot = { text, version: String(version) }
      if (holding) await new Promise<void>((resolve) => gates.push(resolve))
      return snapshot
    },
    async write() {
      throw new Error('not used')
    },
    watch(change, event) {
      onChange = change
      onEvent = event
    },
    async close() {},
  }
  return {
    backend,
    reads: () => reads,
    held: () => gates.length,
    hold: (on: boolean) => void (holding = on),
    releaseOne: () => gates.shift()?.(),
    /** The document changes: the raw event comes at once, the coalesced callback later (or never). */
    write(i: number) {
      text = doc(i)
      version++
      onEvent?.()
    },
    coalesced: () => onChange?.(),
  }
}

async function started(b: ReturnType<typeof memoryBackend>, clock = { t: T0 }): Promise<Keyring> {
  const keyring = createKeyring({ backend: b.backend, logger: silent, now: () => clock.t, refreshIntervalMs: 3_600_000, unknownKidCooldownMs: 10_000 })
  await keyring.start()
  return keyring
}

const until = async (probe: () => boolean) => {
  for (let i = 0; i < 1000 && !probe(); i++) await new Promise((r) => setImmediate(r))
  assert.ok(probe(), 'condition never held')
}

describe('keyring: an unknown kid right after a change event', () => {
  it('a change event inside the coalescing window, during the cooldown: read at once, the new kid found', async () => {
    const b = memoryBackend()
    const keyring = await started(b)
    await keyring.refreshForUnknownKid() // a forged kid spends the cooldown
    const before = b.reads()
    b.write(1) // the coalesced callback has not come yet
    await keyring.refreshForUnknownKid()
    assert.equal(keyring.keyset()!.current.kid, 'k-1')
    assert.equal(b.reads() - before, 1)
    await keyring.close()
  })

  it('a read in flight that began before the change: its answer is not taken, one follow-up read is', async () => {
    const b = memoryBackend()
    const keyring = await started(b)
    b.hold(true)
    const interval = keyring.refresh('interval') // reads doc 0, held
    await until(() => b.held() === 1)
    b.write(1)
    let answered = false
    const request = keyring.refreshForUnknownKid().then(() => void (answered = true))
    b.releaseOne()
    await interval
    await until(() => b.held() === 1) // the follow-up, which reads doc 1
    assert.equal(answered, false, 'answered with a read that began before the change')
    b.releaseOne()
    await request
    assert.equal(keyring.keyset()!.current.kid, 'k-1')
    await keyring.close()
  })

  it('a read in flight that began after the change: its answer is taken, no second read', async () => {
    const b = memoryBackend()
    const keyring = await started(b)
    b.write(1)
    b.hold(true)
    const change = keyring.refresh('change')
    await until(() => b.held() === 1)
    const reads = b.reads()
    const request = keyring.refreshForUnknownKid()
    b.releaseOne()
    await Promise.all([change, request])
    assert.equal(b.reads(), reads)
    assert.equal(keyring.keyset()!.current.kid, 'k-1')
    await keyring.close()
  })

  it('never a chain: changes during the follow-up read do not keep the request waiting for a third read', async () => {
    const b = memoryBackend()
    const keyring = await started(b)
    b.hold(true)
    const interval = keyring.refresh('interval')
    await until(() => b.held() === 1)
    b.write(1)
    let answered = false
    const request = keyring.refreshForUnknownKid().then(() => void (answered = true))
    b.releaseOne()
    await interval
    await until(() => b.held() === 1) // the follow-up read is in flight
    b.write(2)
    b.coalesced() // the watch asks for one more read after it
    b.releaseOne()
    await until(() => answered)
    assert.equal(keyring.keyset()!.current.kid, 'k-1', 'the follow-up answered')
    await until(() => b.held() === 1) // the watch's own read, which the request did not wait for
    b.releaseOne()
    await until(() => keyring.keyset()!.current.kid === 'k-2')
    await request
    await keyring.close()
  })

  it('forged kids after a change that a read has covered: one read per cooldown again', async () => {
    const b = memoryBackend()
    const clock = { t: T0 }
    const keyring = await started(b, clock)
    b.write(1)
    b.coalesced()
    await until(() => keyring.keyset()!.current.kid === 'k-1')
    const before = b.reads()
    for (let i = 0; i < 50; i++) await keyring.refreshForUnknownKid()
    assert.equal(b.reads() - before, 1)
    clock.t += 9_999
    await Promise.all(Array.from({ length: 50 }, () => keyring.refreshForUnknownKid()))
    assert.equal(b.reads() - before, 1)
    await keyring.close()
  })
})

describe('keyring: one-step rotations on a real file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-unknown-kid-'))
  after(() => fs.rmSync(dir, { recursive: true, force: true }))

  it('20 rotations, the new kid asked for the moment the file is written: every one found, in the cooldown', async () => {
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, doc(0))
    const keyring = createKeyring({ backend: createFileBackend(file), logger: silent, refreshIntervalMs: 3_600_000, unknownKidCooldownMs: 3_600_000 })
    await keyring.start()
    await keyring.refreshForUnknownKid() // the cooldown is spent for the whole test
    for (let i = 1; i <= 20; i++) {
      fs.writeFileSync(file, doc(i))
      await keyring.refreshForUnknownKid()
      assert.equal(keyring.keyset()!.current.kid, `k-${i % 4}`, `rotation ${i}`)
    }
    await keyring.close()
  })
})
