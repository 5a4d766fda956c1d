import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { AUTH_FAILURE_REASONS } from '../../src/lib/reasons.js'
import { coverage, FUZZ_SEED, fuzzParameters, fuzzSample } from '../support/fuzz.js'
import { makeKeyset, signToken, validClaims, type TestAlg, type TestKey } from '../support/keys.js'
import { valueOf } from '../support/metrics-text.js'
import { startService, type RunningService } from '../support/service.js'
import { claimsAt, keyPool, verifierAt } from '../lib/verifier/fixtures.js'
import { PROCESS_LEVEL } from '../support/tier.js'

/**
 * Property: a mutated token (bit flips, replaced or inserted characters, truncation, segment
 * swaps, re-encodings) is never accepted unless it is the very string that was signed; the
 * verifier never throws; every reason is one of the closed list. Over HTTP: never a 5xx.
 */
const ALGS: TestAlg[] = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']
const REASONS = new Set<string>(AUTH_FAILURE_REASONS)
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'replace'; at: number; char: string }
  | { kind: 'insert'; at: number; char: string }
  | { kind: 'truncate'; at: number }
  | { kind: 'segments'; order: number[] }
  | { kind: 'reencode'; segment: number; how: 'std-padded' | 'padded' | 'tail' }

const charArb = fc.constantFrom(...B64URL, '.', '=', '+', '/', ' ', '\u00e9', '\u0000')
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), char: charArb }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), char: charArb }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('segments' as const), order: fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 4 }) }),
  fc.record({
    kind: fc.constant('reencode' as const),
    segment: fc.integer({ min: 0, max: 2 }),
    how: fc.constantFrom('std-padded' as const, 'padded' as const, 'tail' as const),
  }),
)

function mutate(token: string, m: Mutation): string {
  const at = 'at' in m ? m.at % (token.length + 1) : 0
  switch (m.kind) {
    case 'flip':
      return at >= token.length ? token : token.slice(0, at) + String.fromCharCode(token.charCodeAt(at) ^ (1 << m.bit)) + token.slice(at + 1)
    case 'replace':
      return token.slice(0, at) + m.char + token.slice(at + 1)
    case 'insert':
      return token.slice(0, at) + m.char + token.slice(at)
    case 'truncate':
      return token.slice(0, at)
    case 'segments': {
      const parts = token.split('.')
      return m.order.map((i) => parts[i] ?? '').join('.')
    }
    case 'reencode': {
      const parts = token.split('.')
      const seg = parts[m.segment] ?? ''
      const bytes = Buffer.from(seg, 'base64url')
      if (m.how === 'std-padded') parts[m.segment] = bytes.toString('base64')
      else if (m.how === 'padded') parts[m.segment] = seg + '='.repeat((4 - (seg.length % 4)) % 4 || 1)
      else if (seg.length % 4 !== 0) {
        const last = B64URL.indexOf(seg.at(-1)!)
        parts[m.segment] = seg.slice(0, -1) + B64URL[(last + 1) % 64] // a non-canonical (or different) tail
      }
      return parts.join('.')
    }
  }
}

const applyAll = (token: string, ms: Mutation[]) => ms.reduce(mutate, token)

describe('fuzz: mutated tokens (fast-check)', () => {
  const { byAlg, keyset } = keyPool()
  const verifier = verifierAt()
  // A few signed tokens per algorithm, made once: signing RSA per case would dominate the run.
  const originals = ALGS.flatMap((alg) =>
    [0, 1, 2].map((i) => ({ alg, token: signToken(byAlg[alg], claimsAt(undefined, { jti: `${alg}-${i}`, sub: `user-${i}` })) })),
  )

  it(`never accepts a changed string, never throws, reasons from the closed list (seed ${FUZZ_SEED})`, async () => {
    const reasons: Record<string, number> = {}
    let changed = 0
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...originals), fc.array(mutationArb, { minLength: 1, maxLength: 3 }), async ({ token }, mutations) => {
        const mutated = applyAll(token, mutations)
        const result = await verifier.verify(mutated, keyset)
        if (mutated !== token) changed++
        if (result.ok) {
          assert.equal(mutated, token, `accepted a changed token: ${JSON.stringify(mutations)}`)
        } else {
          assert.ok(REASONS.has(result.reason), `reason ${result.reason}`)
          reasons[result.reason] = (reasons[result.reason] ?? 0) + 1
        }
      }),
      fuzzParameters(4000),
    )
    coverage('tokens', { changed, ...reasons })
    // The mutations reach deep: a signature that fails, not only shapes that fail to parse.
    assert.ok((reasons.bad_signature ?? 0) > 0 && (reasons.malformed ?? 0) > 0, JSON.stringify(reasons))
  })

  it('an unchanged token is always accepted (the property is not vacuous)', async () => {
    for (const { token } of originals) assert.equal((await verifier.verify(token, keyset)).ok, true)
  })
})

describe('fuzz: mutated tokens over HTTP against the real service', PROCESS_LEVEL, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-fuzz-http-'))
  const keys: TestKey[] = [keyPool().byAlg.ES256, keyPool().byAlg.RS256, keyPool().byAlg.HS256, keyPool().byAlg.EdDSA]
  let service: RunningService
  before(async () => {
    const file = path.join(dir, 'keyset.json')
    fs.writeFileSync(file, JSON.stringify(makeKeyset(keys)))
    service = await startService({ env: { CBC_JWT_KEYSET_FILE: file, CBC_JWT_LOG_LEVEL: 'warn' } })
  })
  after(async () => {
    await service?.stop()
    fs.rmSync(dir, { recursive: true, force: true })
  })

  it('never a 5xx; 200 only for the signed string; every rejection counted under its reason', async () => {
    const originals = keys.map((k) => signToken(k, validClaims({ sub: 'fuzz' })))
    const cases = fuzzSample(fc.tuple(fc.constantFrom(...originals), fc.array(mutationArb, { minLength: 1, maxLength: 3 })), 200)
    const before = await service.metrics()
    const counted = (m: typeof before) => AUTH_FAILURE_REASONS.reduce((sum, r) => sum + (valueOf(m, 'cbc_jwt_auth_failures_total', { reason: r }) ?? 0), 0)
    let rejected = 0
    for (let i = 0; i < cases.length; i += 20) {
      await Promise.all(
        cases.slice(i, i + 20).map(async ([token, mutations]) => {
          const mutated = applyAll(token, mutations)
          // fetch refuses header values with control characters; those never reach a server anyway.
          if (/[\u0000-\u001f\u007f-\uffff]/.test(mutated)) return
          const res = await service.get('/v1/whoami', { authorization: `Bearer ${mutated}` })
          assert.ok(res.status === 200 || res.status === 401, `status ${res.status} for ${JSON.stringify(mutations)}`)
          if (res.status === 200) assert.equal(mutated, token)
          else {
            rejected++
            assert.ok(REASONS.has(res.json.reason), res.body)
          }
        }),
      )
    }
    const afterwards = await service.metrics()
    assert.equal(counted(afterwards) - counted(before), rejected)
    assert.equal(service.process.exitCode, null)
  })
})
