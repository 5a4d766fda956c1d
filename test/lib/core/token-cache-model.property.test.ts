import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { composeCbcJwt, type CbcJwtParts } from '../../../src/lib/core/compose.js'
import { FUZZ_SEED, fuzzParameters } from '../../support/fuzz.js'
import { makeKey, signToken, type TestKey } from '../../support/keys.js'

/**
 * CONTRACT §8 through the whole library: two `createCbcJwt` instances, the cache on and off,
 * read the same backend and see the same random history — tokens issued and presented, the
 * document rewritten (material changed under a kid, a key removed or given `not_after`,
 * `revoked_before` moved, rules by client, subject and jti added and dropped), a change read at
 * once or left for the unknown-kid re-read to find, the clock moved. At every request both
 * answer alike: the keyring's incremental load (unchanged keys keep their import) must never let
 * the cache answer for a keyset that is no longer in force.
 */

const NOW = Date.UTC(2026, 10, 25, 21, 20, 0)
const KIDS = ['k-a', 'k-b', 'k-c'] as const
type Kid = (typeof KIDS)[number]
const MATERIALS: Record<Kid, TestKey[]> = {
  'k-a': [makeKey('HS256', 'k-a'), makeKey('HS256', 'k-a')],
  'k-b': [makeKey('ES256', 'k-b'), makeKey('ES256', 'k-b')],
  'k-c': [makeKey('HS256', 'k-c'), makeKey('HS384', 'k-c')],
}

type Op =
  | { t: 'issue'; kid: Kid; m: number; iatOff: number; ttl: number; who: number }
  | { t: 'request'; pick: number }
  | { t: 'material'; kid: Kid }
  | { t: 'remove'; kid: Kid }
  | { t: 'restore'; kid: Kid }
  | { t: 'notAfter'; kid: Kid; offS: number }
  | { t: 'revoke'; offS: number }
  | { t: 'rule'; kind: number; who: number; offS: number }
  | { t: 'unrule' }
  | { t: 'read' }
  | { t: 'clock'; s: number }

const kid = fc.constantFrom(...KIDS)
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('issue' as const),
      kid,
      m: fc.nat(1),
      iatOff: fc.integer({ min: -100, max: 40 }),
      ttl: fc.integer({ min: 1, max: 600 }),
      who: fc.nat(2),
    }),
  },
  { weight: 10, arbitrary: fc.record({ t: fc.constant('request' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('material' as const), kid }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('remove' as const), kid }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('restore' as const), kid }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('notAfter' as const), kid, offS: fc.integer({ min: -5, max: 120 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('revoke' as const), offS: fc.integer({ min: -150, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('rule' as const), kind: fc.nat(2), who: fc.nat(2), offS: fc.integer({ min: -150, max: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('unrule' as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('read' as const) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('clock' as const), s: fc.integer({ min: -5, max: 120 }) }) },
)

const CLIENTS = ['c-1', 'c-2', 'c-3']

async function play(ops: Op[]): Promise<{ accepted: number; hits: number }> {
  let now = NOW
  const state = new Map<Kid, { m: number; notAfter?: number } | undefined>(KIDS.map((k) => [k, { m: 0 }]))
  let revokedBefore: number | undefined
  const rules = new Map<string, Record<string, string>>()
  const created = new Date(NOW - 86_400_000).toISOString()
  const iso = (ms: number) => new Date(ms).toISOString()
  const document = () =>
    JSON.stringify({
      version: 1,
      current: 'k-a',
      ...(revokedBefore !== undefined ? { revoked_before: iso(revokedBefore) } : {}),
      ...(rules.size > 0 ? { revocations: [...rules.values()] } : {}),
      keys: KIDS.flatMap((k) => {
        const s = state.get(k)
        if (s === undefined) return []
        const key = MATERIALS[k][s.m % 2]!
        return [{ kid: k, alg: key.alg, created_at: created, ...(s.notAfter !== undefined ? { not_after: iso(s.notAfter) } : {}), jwk: key.jwk }]
      }),
    })
  let text = document()
  let version = 0
  const backend = {
    kind: 'memory',
    location: 'memory',
    read: async () => ({ text, version: String(version) }),
    write: async () => assert.fail('no writes'),
    close: async () => {},
  }
  const make = (entries: number): CbcJwtParts =>
    composeCbcJwt({ env: {}, logger: false, now: () => now, backend, refreshIntervalSeconds: 3600, unknownKidCooldownSeconds: 10, tokenCacheEntries: entries })
  const cached = make(10_000)
  const plain = make(0)
  await cached.cbc.start()
  await plain.cbc.start()
  const issued: string[] = []
  let accepted = 0
  try {
    for (const [step, op] of ops.entries()) {
      switch (op.t) {
        case 'issue': {
          const iat = Math.floor(now / 1000) + op.iatOff
          const claims = { iss: 'cbc-omega2', aud: 'cbc-api', sub: `u-${op.who}`, client_id: CLIENTS[op.who], jti: `j-${step % 4}`, iat, exp: iat + op.ttl }
          issued.push(signToken(MATERIALS[op.kid][op.m]!, claims))
          break
        }
        case 'request': {
          if (issued.length === 0) break
          const header = `Bearer ${issued[op.pick % issued.length]}`
          const expected = await plain.cbc.authenticate(header)
          const actual = await cached.cbc.authenticate(header)
          const view = (r: typeof expected) => (r.ok ? { ok: true, kid: r.kid, claims: r.claims } : { ok: false, reason: r.reason })
          assert.deepEqual(view(actual), view(expected), `step ${step}`)
          if (expected.ok) accepted++
          break
        }
        case 'material':
        case 'remove':
        case 'restore':
        case 'notAfter': {
          // Never the current key: a document whose current key is gone or retired is refused (last good stays).
          if (op.kid === 'k-a' && op.t !== 'material') break
          const s = state.get(op.kid)
          if (op.t === 'material') state.set(op.kid, { ...(s ?? {}), m: (s?.m ?? 0) + 1 })
          else if (op.t === 'remove') state.set(op.kid, undefined)
          else if (op.t === 'restore') state.set(op.kid, s ?? { m: 0 })
          else state.set(op.kid, { m: s?.m ?? 0, notAfter: now + op.offS * 1000 })
          break
        }
        case 'revoke':
          revokedBefore = now + op.offS * 1000
          break
        case 'rule': {
          const at = iso(now + op.offS * 1000)
          if (op.kind === 0) rules.set(`c${op.who}`, { client_id: CLIENTS[op.who]!, issued_before: at, created_at: created })
          else if (op.kind === 1) rules.set(`s${op.who}`, { sub: `u-${op.who}`, issued_before: at, created_at: created })
          else rules.set(`j${op.who}`, { jti: `j-${op.who}`, expires_at: iso(now + 86_400_000), created_at: created })
          break
        }
        case 'unrule':
          rules.delete([...rules.keys()][0] ?? '')
          break
        case 'read':
          // Both read the backend now (a change event); without it only an unknown kid's re-read does.
          await cached.keyring.refresh('change')
          await plain.keyring.refresh('change')
          break
        case 'clock':
          now += op.s * 1000
          break
      }
      if (op.t !== 'request' && op.t !== 'issue' && op.t !== 'read' && op.t !== 'clock') {
        text = document()
        version++
      }
    }
    return { accepted, hits: cached.verifier.tokenCache!.stats().hits }
  } finally {
    await cached.cbc.close()
    await plain.cbc.close()
  }
}

describe(`createCbcJwt: the cache never changes an answer, through the keyring (seed ${FUZZ_SEED})`, () => {
  it('a cached and an uncached instance over one backend agree at every request', async () => {
    const totals = { accepted: 0, hits: 0 }
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 80 }), async (ops) => {
        const { accepted, hits } = await play(ops)
        totals.accepted += accepted
        totals.hits += hits
      }),
      // Not scaled down by the unit tier (CBC_JWT_FUZZ_SCALE < 1): the histories must reach the cache.
      { ...fuzzParameters(60), numRuns: Math.max(60, fuzzParameters(60).numRuns ?? 0), plugins: [fc.unbiased()] },
    )
    assert.ok(totals.accepted > 50 && totals.hits > 20, `too few acceptances or hits: ${JSON.stringify(totals)}`)
  })
})
