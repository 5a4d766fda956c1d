// The last good copy under every interleaving fast-check's scheduler finds: several writers go
// through `withLastGoodCopy` at once (read, write with check-and-set, one re-read and re-apply
// after a conflict, as the CLI does), each backend call landing atomically at a point the
// scheduler picks. Found the bug where a loser "put the copy back" to another loser's document.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import type { KeysetBackend, KeysetSnapshot } from '../../../src/lib/backends/backend.js'
import { BackendError, CasConflictError } from '../../../src/lib/errors.js'
import { loadKeyset, parseKeysetText } from '../../../src/lib/keyset/load.js'
import { withLastGoodCopy } from '../../../src/ops/last-good/copy.js'
import { serializeKeyset } from '../../../src/lib/keyset/serialize.js'
import { fuzzParameters } from '../../support/fuzz.js'
import { makeKey, makeKeyset } from '../../support/keys.js'

const NOW = Date.now()
/** One valid keyset per writer (a retry writes its own again), and the first one stored. */
const DOCS = Array.from({ length: 5 }, (_, i) => serializeKeyset(makeKeyset([makeKey('ES256', `k-race-${i}`)]) as never))
const INITIAL = DOCS[0]!
const loads = (text: string) => {
  try {
    loadKeyset(parseKeysetText(text), NOW)
    return true
  } catch {
    return false
  }
}

/** Versioned objects in memory; every call lands when the scheduler releases it, atomically. */
function store(s: fc.Scheduler) {
  const objects = new Map<string, { text: string; version: number }>()
  const land = <T>(label: string, f: () => T): Promise<T> => s.schedule(Promise.resolve(label)).then(f)
  const backend = (name: string): KeysetBackend => ({
    kind: 'memory',
    location: `memory:${name}`,
    read: () =>
      land(`read ${name}`, (): KeysetSnapshot => {
        const o = objects.get(name)
        if (!o) throw new BackendError('not_found', `memory:${name}: not found`)
        return { text: o.text, version: String(o.version) }
      }),
    write: (text, expected) =>
      land(`write ${name}`, (): KeysetSnapshot => {
        const o = objects.get(name)
        if (expected === null ? o !== undefined : expected !== undefined && String(o?.version) !== expected) {
          throw new CasConflictError(`memory:${name}: changed`)
        }
        const next = { text, version: (o?.version ?? 0) + 1 }
        objects.set(name, next)
        return { text, version: String(next.version) }
      }),
    close: async () => {},
  })
  /** What one CLI process writes through: the keyset with its last good copy, at the pinned clock. */
  const cli = () =>
    withLastGoodCopy(
      backend('keyset'),
      () => backend('copy'),
      () => NOW,
    )
  return { objects, backend, cli, text: (name: string) => objects.get(name)?.text }
}

/**
 * A CLI change: read, write with check-and-set, and after a conflict one re-read and re-apply
 * (`attempts` 2, as rotate and revoke do; 1: `keyset restore`, which is not retried).
 */
async function change(b: KeysetBackend, text: string, attempts = 2): Promise<'landed' | 'lost'> {
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const snap = await b.read()
    try {
      await b.write(text, snap.version)
      return 'landed'
    } catch (err) {
      if (!(err instanceof CasConflictError)) throw err
    }
  }
  return 'lost'
}

describe('the last good copy when writers race (fast-check scheduler)', () => {
  it('whatever the interleaving, once every writer is done the copy holds what the keyset holds', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.integer({ min: 2, max: 4 }), fc.boolean(), async (s, writers, copyExists) => {
        const mem = store(s)
        mem.objects.set('keyset', { text: INITIAL, version: 1 })
        if (copyExists) mem.objects.set('copy', { text: INITIAL, version: 1 })
        const runs = Array.from({ length: writers }, (_, i) => change(mem.cli(), DOCS[i + 1]!).catch((err: Error) => `failed: ${err.message}`))
        const outcomes = await s.waitFor(Promise.all(runs))
        assert.ok(outcomes.includes('landed'), `the first write to land always does: ${outcomes}`)
        assert.equal(
          mem.text('copy'),
          mem.text('keyset'),
          `${outcomes.join(', ')}\n${s
            .report()
            .map((r) => r.label)
            .join(' → ')}`,
        )
      }),
      fuzzParameters(200),
    )
  })

  it('a keyset broken outside cbc-jwt meanwhile never reaches the copy: it only ever holds documents that load', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 1, maxLength: 3 }), async (s, attempts) => {
        const mem = store(s)
        mem.objects.set('keyset', { text: INITIAL, version: 1 })
        mem.objects.set('copy', { text: INITIAL, version: 1 })
        const outside = mem.backend('keyset')
        const runs: Array<Promise<unknown>> = attempts.map((n, i) => change(mem.cli(), DOCS[i + 1]!, n).catch(() => 'failed'))
        // Someone edits the Secret by hand and truncates it, at a moment the scheduler picks.
        runs.push(outside.write(INITIAL.slice(0, 60)))
        await s.waitFor(Promise.all(runs))
        const copy = mem.text('copy')!
        assert.ok(loads(copy), `the copy loads: ${copy.slice(0, 80)}`)
        if (loads(mem.text('keyset')!)) assert.equal(copy, mem.text('keyset'), 'a keyset that loads is what the copy holds')
      }),
      fuzzParameters(200),
    )
  })
})
