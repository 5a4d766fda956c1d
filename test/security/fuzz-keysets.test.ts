import assert from 'node:assert/strict'
import fs from 'node:fs'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import type { KeysetBackend } from '../../src/lib/backends/backend.js'
import { KeysetInvalidError } from '../../src/lib/errors.js'
import { createKeyring } from '../../src/lib/keyring/keyring.js'
import { loadKeyset, parseKeysetText } from '../../src/lib/keyset/load.js'
import { cbcJwt, tempDir } from '../ops/cli/cli.js'
import { coverage, FUZZ_SEED, fuzzParameters, fuzzSample } from '../support/fuzz.js'
import { makeKey, makeKeyset } from '../support/keys.js'

/**
 * Properties over keyset documents, random and mutated from a valid one:
 * - loading never throws anything but a KeysetInvalidError (no TypeError from a half-valid shape);
 * - the keyring never crashes, keeps the last good keyset through every bad one, and counts
 *   each bad load once;
 * - `cbc-jwt keyset validate` and the service agree on every document: validate never exits 0
 *   on a document the service refuses, nor 1 on one it loads.
 */
const NOW = Date.parse('2026-11-25T21:20:00Z')
const KEYS = [makeKey('ES256', 'k-es'), makeKey('EdDSA', 'k-ed'), makeKey('HS256', 'k-hs'), makeKey('RS256', 'k-rs')]
const BASE = makeKeyset(
  KEYS.map((key, i) => ({ key, opts: { createdAt: new Date(NOW - (i + 1) * 3600_000), ...(i === 3 ? { notAfter: new Date(NOW + 86400_000) } : {}) } })),
  {
    revoked_before: '2026-11-25T20:00:00Z',
  },
)

const FIELDS = ['version', 'current', 'revoked_before', 'keys', 'extra']
const KEY_FIELDS = ['kid', 'alg', 'created_at', 'not_after', 'jwk', 'status']
const JWK_FIELDS = ['kty', 'crv', 'x', 'y', 'd', 'n', 'e', 'k', 'alg', 'kid', 'use', 'p']
const interesting = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(
    'AQ',
    'AA',
    'Ag',
    'AQAB',
    '',
    'k-es',
    'k-ed',
    'ES256',
    'EdDSA',
    'HS256',
    'RS256',
    'none',
    'EC',
    'OKP',
    'oct',
    'RSA',
    'P-256',
    'Ed25519',
    'Ed448',
    '2026-11-25T21:16:00Z',
    '2026-02-30T00:00:00Z',
    '2026-11-25T23:59:60Z',
    'AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  ),
)

type Edit =
  | { where: 'top'; field: string; value: unknown; remove: boolean }
  | { where: 'key'; index: number; field: string; value: unknown; remove: boolean }
  | { where: 'jwk'; index: number; field: string; value: unknown; remove: boolean }
  | { where: 'swap-jwk'; a: number; b: number }
  | { where: 'dup-key'; index: number }

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ where: fc.constant('top' as const), field: fc.constantFrom(...FIELDS), value: interesting, remove: fc.boolean() }),
  fc.record({ where: fc.constant('key' as const), index: fc.nat(5), field: fc.constantFrom(...KEY_FIELDS), value: interesting, remove: fc.boolean() }),
  fc.record({ where: fc.constant('jwk' as const), index: fc.nat(5), field: fc.constantFrom(...JWK_FIELDS), value: interesting, remove: fc.boolean() }),
  fc.record({ where: fc.constant('swap-jwk' as const), a: fc.nat(3), b: fc.nat(3) }),
  fc.record({ where: fc.constant('dup-key' as const), index: fc.nat(3) }),
)

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null

function edited(edits: Edit[]): unknown {
  const doc = structuredClone(BASE) as Record<string, any>
  for (const e of edits) {
    const keys = Array.isArray(doc.keys) ? doc.keys : undefined
    const set = (obj: any, field: string, value: unknown, remove: boolean) => {
      if (typeof obj !== 'object' || obj === null) return
      if (remove) delete obj[field]
      else obj[field] = value
    }
    if (e.where === 'top') set(doc, e.field, e.value, e.remove)
    else if (e.where === 'key') set(keys?.[e.index], e.field, e.value, e.remove)
    else if (e.where === 'jwk') set(keys?.[e.index]?.jwk, e.field, e.value, e.remove)
    else if (e.where === 'swap-jwk' && isObject(keys?.[e.a]) && isObject(keys?.[e.b])) [keys![e.a].jwk, keys![e.b].jwk] = [keys![e.b].jwk, keys![e.a].jwk]
    else if (e.where === 'dup-key' && keys?.[e.index]) keys.push(structuredClone(keys[e.index]))
  }
  return doc
}

/** A document: mostly mutations of a valid one (they reach the meaning checks), some pure noise. */
const documentArb = fc.oneof(
  { weight: 6, arbitrary: fc.array(editArb, { minLength: 0, maxLength: 4 }).map(edited) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
)
const textArb = fc.oneof(
  { weight: 8, arbitrary: documentArb.map((d) => JSON.stringify(d)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 200 }) },
  { weight: 1, arbitrary: documentArb.map((d) => JSON.stringify(d)).chain((t) => fc.nat(t.length).map((n) => t.slice(0, n))) },
)

/** The service's verdict on a text: loaded, or refused with a KeysetInvalidError; anything else is a bug. */
function verdict(text: string): 'valid' | 'invalid' {
  try {
    loadKeyset(parseKeysetText(text), NOW)
    return 'valid'
  } catch (err) {
    if (err instanceof KeysetInvalidError) return 'invalid'
    throw new Error(`loading threw ${String(err)} instead of a KeysetInvalidError`, { cause: err })
  }
}

describe('fuzz: keyset documents (fast-check)', () => {
  it(`loading refuses with a KeysetInvalidError listing problems, or loads — nothing else (seed ${FUZZ_SEED})`, () => {
    const seen = { valid: 0, invalid: 0 }
    fc.assert(
      fc.property(textArb, (text) => {
        const v = verdict(text)
        seen[v]++
        if (v === 'invalid') {
          try {
            loadKeyset(parseKeysetText(text), NOW)
          } catch (err) {
            assert.ok((err as KeysetInvalidError).problems.length > 0, 'refused without naming a problem')
          }
        }
      }),
      fuzzParameters(600),
    )
    coverage('keyset-load', seen)
    assert.ok(seen.valid > 0 && seen.invalid > 0, JSON.stringify(seen))
  })

  it('the keyring keeps the last good keyset through any sequence, and counts every bad load once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(textArb, { minLength: 1, maxLength: 6 }), async (texts) => {
        let next = JSON.stringify(BASE)
        let n = 0
        const backend: KeysetBackend = {
          kind: 'test',
          location: 'memory',
          read: async () => ({ text: next, version: String(n++) }),
          write: async () => assert.fail('the keyring never writes'),
          close: async () => {},
        }
        let errors = 0
        const keyring = createKeyring({
          backend,
          logger: { info() {}, warn() {}, error() {} },
          now: () => NOW,
          events: { onBackendError: () => void errors++ },
        })
        await keyring.refresh('start')
        let good = keyring.keyset()
        assert.ok(good)
        for (const text of texts) {
          next = text
          const before = errors
          await keyring.refresh('change')
          if (verdict(text) === 'valid') {
            assert.equal(errors, before)
            assert.notEqual(keyring.keyset(), good)
            good = keyring.keyset()
          } else {
            assert.equal(errors, before + 1, 'a bad load not counted exactly once')
            assert.equal(keyring.keyset(), good, 'the last good keyset was dropped')
          }
          assert.ok(keyring.ready())
        }
        await keyring.close()
      }),
      fuzzParameters(150),
    )
  })

  describe('the CLI and the service agree on every generated document', () => {
    const tmp = tempDir('fuzz-agree')
    after(() => tmp.cleanup())

    it('keyset validate exits 0 exactly when the service loads the document', async () => {
      // Half valid, half not, so both directions of the agreement are exercised.
      const texts = fuzzSample(textArb, 40)
      const valid = texts.filter((t) => verdict(t) === 'valid').slice(0, 5)
      const invalid = texts.filter((t) => verdict(t) === 'invalid').slice(0, 7)
      const chosen = [...valid, ...invalid, JSON.stringify(BASE)]
      await Promise.all(
        chosen.map(async (text, i) => {
          const file = tmp.file(`doc-${i}.json`)
          fs.writeFileSync(file, text)
          const r = await cbcJwt(['keyset', 'validate', '--keyset-file', file], { env: { CBC_JWT_NOW: new Date(NOW).toISOString() }, timeoutMs: 60_000 })
          const expected = verdict(text) === 'valid' ? 0 : 1
          assert.equal(r.code, expected, `validate exit ${r.code}, the service says ${verdict(text)}: ${r.stdout.slice(0, 300)} ${r.stderr.slice(0, 300)}`)
        }),
      )
      coverage('cli-agreement', { valid: valid.length + 1, invalid: invalid.length })
    })
  })
})
