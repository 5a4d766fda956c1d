import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import fc from 'fast-check'
import { composeCbcJwt, type CbcJwtParts } from '../../../src/lib/core/compose.js'
import { assertEveryReasonSeen, fullFuzzParameters, FUZZ_SEED } from '../../support/fuzz.js'
import { makeKey, rawSignature, type TestAlg, type TestKey } from '../../support/keys.js'
import { captureLogger } from './fixtures.js'

/**
 * Differential test of `cbc.authenticate()` against an oracle written from CONTRACT.md §2, §8,
 * §12 and docs/reasons.md alone (the order of checks and the mapping of failures without a
 * reason of their own), over random tokens built by mutating headers, claims, signatures and
 * the `Authorization` value. Two instances, the cache on and off, see every token (the cached
 * one twice): all three answers must equal the oracle's.
 */

const ISSUER = 'cbc-omega2'
const AUDIENCE = 'cbc-api'
const NOW = Date.UTC(2026, 10, 25, 21, 20, 0)
const MAX_TTL = 3600

const KEYS = {
  hs: makeKey('HS256', 'k-hs'),
  es: makeKey('ES256', 'k-es'),
  ed: makeKey('EdDSA', 'k-ed'),
  old: makeKey('HS384', 'k-old'),
}
/** Signs with the same kid but other material: a forger who knows the kid. */
const FORGERS = { hs: makeKey('HS256', 'k-hs'), es: makeKey('ES256', 'k-es') }
type KeyName = keyof typeof KEYS

interface World {
  leeway: number
  maxTokenBytes: number
  /** `not_after` of k-old, ms from NOW. */
  oldNotAfterMs: number
  revokedBeforeS: number | undefined
  rules: Array<{ kind: 'client_id' | 'sub' | 'jti'; value: string; beforeS: number }>
}

const b64u = (data: Buffer | string): string => Buffer.from(data).toString('base64url')

/** A member value as raw JSON text, so that numbers JSON.stringify cannot write (1e400) are written too. */
type Member = [name: string, raw: string]
const object = (members: Member[]) => `{${members.map(([n, v]) => `${JSON.stringify(n)}:${v}`).join(',')}}`

interface TokenSpec {
  key: KeyName
  /** Header: alg, kid and other members, or a raw text that is not an object. */
  header: { members: Member[] } | { raw: string }
  payload: { members: Member[] } | { raw: string }
  signer: 'key' | 'forger' | 'none'
  signature: 'good' | 'empty' | 'flip' | 'tail' | 'padded'
  /** Extra characters of a padding claim (to reach the size bound). */
  pad: number
  /** How the token is presented. */
  presented: number
  /** Seconds from NOW the clock is at when it is presented. */
  atS: number
}

const raw = (v: unknown) => JSON.stringify(v)

function numberLike(base: number): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 30, arbitrary: fc.integer({ min: -120, max: 120 }).map((d) => String(base + d)) },
    { weight: 2, arbitrary: fc.double({ min: -120, max: 120, noNaN: true }).map((d) => String(base + d)) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        raw(String(base)),
        'true',
        'null',
        '[]',
        '{}',
        '1e400',
        '-1e400',
        '0',
        '-1',
        String(base).replace(/^(\d)/, '$1.0'),
        `${base}e0`,
        '1e20',
        '9007199254740993',
      ),
    },
  )
}

function claimsArb(): fc.Arbitrary<Member[]> {
  const nowS = NOW / 1000
  return fc
    .record(
      {
        iss: fc.oneof(
          { weight: 6, arbitrary: fc.constant(raw(ISSUER)) },
          { weight: 4, arbitrary: fc.constantFrom(raw('other'), raw([ISSUER]), 'null', '1', raw('CBC-OMEGA2'), raw(`${ISSUER} `)) },
        ),
        aud: fc.oneof(
          { weight: 4, arbitrary: fc.constant(raw(AUDIENCE)) },
          { weight: 2, arbitrary: fc.constantFrom(raw([AUDIENCE]), raw(['x', AUDIENCE])) },
          { weight: 4, arbitrary: fc.constantFrom(raw([]), raw([[AUDIENCE]]), raw('other'), 'null', raw({ 0: AUDIENCE }), raw(AUDIENCE.toUpperCase()), '1') },
        ),
        iat: numberLike(nowS - 60),
        exp: numberLike(nowS + 300),
        nbf: numberLike(nowS - 60),
        sub: fc.constantFrom(raw('u-1'), raw('u-2'), '1'),
        client_id: fc.constantFrom(raw('c-1'), raw('c-2'), '7', 'null'),
        azp: fc.constantFrom(raw('c-1'), raw('c-3')),
        jti: fc.constantFrom(raw('j-1'), raw('j-2'), '5'),
        scope: fc.constantFrom(raw('read write'), raw(['read']), '3'),
      },
      { requiredKeys: [] },
    )
    .chain((claims) =>
      // Mostly iss, aud, iat, exp all present: the deep checks are the interesting ones.
      fc.record({ keepCore: fc.nat(7), order: fc.boolean() }).map(({ keepCore, order }) => {
        const members = Object.entries(claims) as Member[]
        if (keepCore > 0) {
          for (const [name, value] of [
            ['iss', raw(ISSUER)],
            ['aud', raw(AUDIENCE)],
            ['iat', String(nowS - 60)],
            ['exp', String(nowS + 300)],
          ] as Member[]) {
            if (!members.some(([n]) => n === name)) members.push([name, value])
          }
        }
        return order ? members.reverse() : members
      }),
    )
}

function headerArb(key: KeyName): fc.Arbitrary<TokenSpec['header']> {
  const alg = KEYS[key].alg
  const algArb = fc.oneof(
    { weight: 10, arbitrary: fc.constant(raw(alg)) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        raw(alg.toLowerCase()),
        raw('none'),
        raw('None'),
        raw('NONE'),
        raw('HS256'),
        raw('RS256'),
        raw('ES256'),
        raw('EdDSA'),
        raw(''),
        '1',
        'null',
        raw([alg]),
      ),
    },
  )
  const kidArb = fc.oneof(
    { weight: 10, arbitrary: fc.constant(raw(KEYS[key].kid)) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        raw(''),
        raw('k-nope'),
        '1',
        'null',
        raw([KEYS[key].kid]),
        raw('x'.repeat(200)),
        raw('k-hs\n'),
        raw(KEYS[key].kid.toUpperCase()),
        raw('k-old'),
      ),
    },
  )
  const members = fc
    .record(
      {
        alg: algArb,
        kid: kidArb,
        typ: fc.oneof(
          { weight: 4, arbitrary: fc.constantFrom(raw('JWT'), raw('jwt'), raw('at+jwt'), raw('application/at+JWT')) },
          { weight: 1, arbitrary: fc.constantFrom(raw('JOSE'), raw(''), '1', 'null') },
        ),
        crit: fc.constantFrom(raw([]), raw(['exp']), raw('x')),
        b64: fc.constantFrom('false', 'true'),
        jku: fc.constant(raw('https://evil.example/jwks')),
        jwk: fc.constant(raw({ kty: 'oct', k: 'AAAA' })),
        x5u: fc.constant(raw('https://evil.example/x5u')),
        x5c: fc.constant(raw(['MIIB'])),
      },
      { requiredKeys: ['alg', 'kid'] },
    )
    .chain((h) =>
      fc
        .record({
          keepAlg: fc.nat(19),
          keepKid: fc.nat(19),
          extras: fc.shuffledSubarray(['typ', 'crit', 'b64', 'jku', 'jwk', 'x5u', 'x5c', 'typ', 'jku'], { maxLength: 2 }),
          some: fc.nat(3),
        })
        .map(({ keepAlg, keepKid, extras, some }) => {
          const out: Member[] = []
          // Mostly alg and kid present, few other members: else nearly every token fails early.
          if (h.alg !== undefined && keepAlg > 0) out.push(['alg', h.alg])
          if (h.kid !== undefined && keepKid > 0) out.push(['kid', h.kid])
          for (const name of some === 0 ? extras : []) {
            const value = h[name as keyof typeof h]
            if (value !== undefined && !out.some(([n]) => n === name)) out.push([name, value])
          }
          return { members: out }
        }),
    )
  return fc.oneof(
    { weight: 20, arbitrary: members },
    { weight: 1, arbitrary: fc.constantFrom({ raw: '[]' }, { raw: 'null' }, { raw: 'not json' }, { raw: '"x"' }, { raw: '' }, { raw: `{"alg":"${alg}"` }) },
  )
}

const specArb: fc.Arbitrary<TokenSpec> = fc.constantFrom<KeyName>('hs', 'es', 'ed', 'old').chain((key) =>
  fc.record({
    key: fc.constant(key),
    header: headerArb(key),
    payload: fc.oneof(
      { weight: 20, arbitrary: claimsArb().map((members) => ({ members })) },
      { weight: 1, arbitrary: fc.constantFrom({ raw: '[]' }, { raw: 'null' }, { raw: 'x' }, { raw: '' }) },
    ),
    signer: fc.oneof({ weight: 12, arbitrary: fc.constant('key' as const) }, { weight: 1, arbitrary: fc.constantFrom('forger' as const, 'none' as const) }),
    signature: fc.oneof(
      { weight: 12, arbitrary: fc.constant('good' as const) },
      { weight: 1, arbitrary: fc.constantFrom('empty' as const, 'flip' as const, 'tail' as const, 'padded' as const) },
    ),
    pad: fc.oneof({ weight: 8, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 1200 }) }),
    presented: fc.oneof({ weight: 12, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.nat(12) }),
    atS: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: fc.integer({ min: -200, max: 900 }) }),
  }),
)

const worldArb: fc.Arbitrary<World> = fc.record({
  leeway: fc.constantFrom(0, 30, 0.5),
  maxTokenBytes: fc.constantFrom(8192, 1024, 700),
  oldNotAfterMs: fc.integer({ min: -120_000, max: 600_000 }),
  revokedBeforeS: fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.double({ min: -200, max: 100, noNaN: true }) },
    { weight: 1, arbitrary: fc.constant(-3600) },
  ),
  rules: fc.array(
    fc.record({
      kind: fc.constantFrom('client_id' as const, 'sub' as const, 'jti' as const),
      value: fc.constantFrom('c-1', 'c-3', 'u-1', 'j-1', 'j-2'),
      beforeS: fc.integer({ min: -200, max: 100 }),
    }),
    { maxLength: 2 },
  ),
})

/** The token text of a spec; every choice made here is one the oracle knows. */
function build(spec: TokenSpec): { token: string; signedByKey: boolean } {
  const key = KEYS[spec.key]
  const headerText = 'raw' in spec.header ? spec.header.raw : object(spec.header.members)
  const payloadMembers = 'raw' in spec.payload ? undefined : [...spec.payload.members]
  if (payloadMembers && spec.pad > 0) payloadMembers.push(['pad', raw('p'.repeat(spec.pad))])
  const payloadText = payloadMembers ? object(payloadMembers) : (spec.payload as { raw: string }).raw
  const h = b64u(headerText)
  const p = b64u(payloadText)
  const input = Buffer.from(`${h}.${p}`)
  let signature = ''
  if (spec.signer !== 'none') {
    const signer = spec.signer === 'key' ? key : (FORGERS[spec.key as keyof typeof FORGERS] ?? makeForger(key.alg))
    signature = b64u(rawSignature(key.alg, signer.signingKey, input))
  }
  let signedByKey = spec.signer === 'key'
  if (spec.signature === 'empty') {
    signature = ''
    signedByKey = false
  } else if (spec.signature === 'flip' && signature.length > 2) {
    const i = signature.length >> 1
    signature = signature.slice(0, i) + (signature[i] === 'A' ? 'B' : 'A') + signature.slice(i + 1)
    signedByKey = false
  } else if (spec.signature === 'tail' && signature.length % 4 !== 0) {
    // A non-canonical spelling of the same bytes: stray low bits in the last character.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
    signature = signature.slice(0, -1) + alphabet[alphabet.indexOf(signature.at(-1)!) + 1]
    signedByKey = false
  } else if (spec.signature === 'padded' && signature.length % 4 !== 0) {
    signature += '='.repeat(4 - (signature.length % 4))
    signedByKey = false
  }
  return { token: `${h}.${p}.${signature}`, signedByKey: signedByKey && signature !== '' }
}

const forgers = new Map<TestAlg, TestKey>()
function makeForger(alg: TestAlg): TestKey {
  let k = forgers.get(alg)
  if (!k) forgers.set(alg, (k = makeKey(alg, 'forger')))
  return k
}

/** How a token is presented in `Authorization`, and what the contract says of the presentation alone. */
function present(token: string, how: number): { header: string | string[] | undefined; verdict?: 'missing' | 'malformed' } {
  switch (how) {
    case 1:
      return { header: `bearer ${token}` }
    case 2:
      return { header: `BEARER   ${token}  ` }
    case 3:
      return { header: `\tBearer\t${token}` }
    case 4:
      return { header: 'Bearer', verdict: 'malformed' }
    case 5:
      return { header: `Bearer ${token} x`, verdict: 'malformed' }
    case 6:
      return { header: `Basic ${token}`, verdict: 'missing' }
    case 7:
      return { header: token, verdict: 'missing' }
    case 8:
      return { header: [`Bearer ${token}`, `Bearer ${token}`], verdict: 'malformed' }
    case 9:
      return { header: '', verdict: 'missing' }
    case 10:
      return { header: undefined, verdict: 'missing' }
    case 11:
      return { header: [`Bearer ${token}`] }
    case 12:
      return { header: 'Bearer ', verdict: 'malformed' }
    default:
      return { header: `Bearer ${token}` }
  }
}

type Reason = string
const ACCEPTED_TYP = new Set(['jwt', 'at+jwt', 'application/jwt', 'application/at+jwt'])
const KID_OF: Record<string, KeyName> = { 'k-hs': 'hs', 'k-es': 'es', 'k-ed': 'ed', 'k-old': 'old' }

function parseObject(segment: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'))
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** The answer CONTRACT §2 and docs/reasons.md give: 'ok' or a reason. */
function oracle(token: string, signedBy: KeyName | undefined, world: World, nowMs: number): Reason {
  if (Buffer.byteLength(token) > world.maxTokenBytes) return 'too_large'
  const parts = token.split('.')
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[0]!) || !/^[A-Za-z0-9_-]+$/.test(parts[1]!) || !/^[A-Za-z0-9_-]*$/.test(parts[2]!))
    return 'malformed'
  const header = parseObject(parts[0]!)
  if (!header || typeof header.alg !== 'string') return 'malformed'
  if (header.alg.toLowerCase() === 'none') return 'unsupported_alg'
  if ('crit' in header || 'b64' in header) return 'malformed'
  if ('typ' in header && !(typeof header.typ === 'string' && ACCEPTED_TYP.has(header.typ.toLowerCase()))) return 'malformed'
  // Routed by iss before any key lookup: only the keyset's issuer is configured here. A payload
  // that is not a JSON object names no issuer: the keyset's keys and the signature judge it.
  const claims = parseObject(parts[1]!)
  if (claims && claims.iss !== ISSUER) return 'bad_issuer'
  const kid = header.kid
  if (typeof kid !== 'string' || kid === '') return 'unknown_kid'
  const name = KID_OF[kid]
  if (name === undefined) return 'unknown_kid'
  if (name === 'old' && nowMs >= NOW + world.oldNotAfterMs) return 'unknown_kid'
  if (header.alg !== KEYS[name].alg) return 'unsupported_alg'
  // The signature verifies only with the very key of that kid (the spec says which key signed).
  if (signedBy !== name) return 'bad_signature'
  if (!claims) return 'malformed'
  const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)
  const { exp, iat, nbf } = claims
  if (!num(exp) || !num(iat) || (nbf !== undefined && !num(nbf))) return 'malformed'
  if (exp - iat > MAX_TTL + world.leeway) return 'malformed'
  const nowS = nowMs / 1000
  if (nowS >= exp + world.leeway) return 'expired'
  if ((num(nbf) && nowS + world.leeway < nbf) || iat > nowS + world.leeway) return 'not_yet_valid'
  if (world.revokedBeforeS !== undefined && iat < NOW / 1000 + world.revokedBeforeS) return 'revoked'
  const client = typeof claims.client_id === 'string' ? claims.client_id : typeof claims.azp === 'string' ? claims.azp : undefined
  for (const rule of world.rules) {
    const before = NOW / 1000 + rule.beforeS
    if (rule.kind === 'client_id' && client === rule.value && iat < before) return 'revoked'
    if (rule.kind === 'sub' && claims.sub === rule.value && iat < before) return 'revoked'
    if (rule.kind === 'jti' && claims.jti === rule.value) return 'revoked'
  }
  const aud = claims.aud
  if (!(aud === AUDIENCE || (Array.isArray(aud) && aud.includes(AUDIENCE)))) return 'bad_audience'
  return 'ok'
}

function keysetText(world: World): string {
  const created = new Date(NOW - 86_400_000).toISOString()
  const entry = (name: KeyName, extra: Record<string, unknown> = {}) => ({
    kid: KEYS[name].kid,
    alg: KEYS[name].alg,
    created_at: created,
    ...extra,
    jwk: KEYS[name].jwk,
  })
  // One rule per client, subject or token id, as `revoke` writes them.
  const seen = new Set<string>()
  const revocations = world.rules
    .filter((r) => !seen.has(`${r.kind} ${r.value}`) && seen.add(`${r.kind} ${r.value}`))
    .map((r) =>
      r.kind === 'jti'
        ? { jti: r.value, expires_at: new Date(NOW + 86_400_000).toISOString(), created_at: created }
        : { [r.kind]: r.value, issued_before: new Date(NOW + r.beforeS * 1000).toISOString(), created_at: created },
    )
  return JSON.stringify({
    version: 1,
    current: 'k-hs',
    ...(world.revokedBeforeS !== undefined ? { revoked_before: new Date(NOW + world.revokedBeforeS * 1000).toISOString() } : {}),
    ...(revocations.length > 0 ? { revocations } : {}),
    keys: [entry('hs'), entry('es'), entry('ed'), entry('old', { not_after: new Date(NOW + world.oldNotAfterMs).toISOString() })],
  })
}

interface Instance {
  parts: CbcJwtParts
  lines: Array<Record<string, unknown>>
  setNow(ms: number): void
}

function instance(world: World, text: string, cacheEntries: number): Instance {
  let now = NOW
  const { lines, logger } = captureLogger()
  const parts = composeCbcJwt({
    env: {},
    logger,
    now: () => now,
    refreshIntervalSeconds: 3600,
    clockToleranceSeconds: world.leeway,
    maxTokenBytes: world.maxTokenBytes,
    maxTokenTtlSeconds: MAX_TTL,
    tokenCacheEntries: cacheEntries,
    backend: { kind: 'memory', location: 'memory', read: async () => ({ text, version: '1' }), write: async () => assert.fail(), close: async () => {} },
  })
  return { parts, lines, setNow: (ms) => void (now = ms) }
}

describe(`authenticate() agrees with an oracle written from the contract (seed ${FUZZ_SEED})`, () => {
  const open: Instance[] = []
  after(async () => {
    for (const i of open) await i.parts.cbc.close()
  })

  it('every random token gets the oracle’s answer, from the cached and the uncached instance alike', async () => {
    const tally: Record<string, number> = {}
    await fc.assert(
      fc.asyncProperty(worldArb, fc.array(specArb, { minLength: 1, maxLength: 25 }), async (world, specs) => {
        const text = keysetText(world)
        const cached = instance(world, text, 10_000)
        const plain = instance(world, text, 0)
        open.push(cached, plain)
        await cached.parts.cbc.start()
        await plain.parts.cbc.start()
        assert.equal(cached.parts.cbc.ready(), true, 'the keyset loads')
        for (const spec of specs) {
          const { token, signedByKey } = build(spec)
          const presented = present(token, spec.presented)
          const nowMs = NOW + spec.atS * 1000
          const expected = presented.verdict ?? oracle(token, signedByKey ? spec.key : undefined, world, nowMs)
          tally[expected] = (tally[expected] ?? 0) + 1
          for (const [which, inst] of [
            ['uncached', plain],
            ['cached', cached],
            ['cached, again', cached],
          ] as const) {
            inst.setNow(nowMs)
            const result = await inst.parts.cbc.authenticate(presented.header)
            const got = result.ok ? 'ok' : result.reason
            assert.equal(got, expected, `${which}: ${JSON.stringify({ spec, token })}`)
          }
        }
        for (const inst of [cached, plain]) {
          // No token ever reaches a log line.
          const logged = JSON.stringify(inst.lines)
          for (const spec of specs) {
            const sig = build(spec).token.split('.')[2]!
            if (sig.length > 20) assert.ok(!logged.includes(sig), 'a signature reached the log')
          }
        }
        await cached.parts.cbc.close()
        await plain.parts.cbc.close()
      }),
      // Not scaled down by the unit tier (CBC_JWT_FUZZ_SCALE < 1): every reason must come up.
      fullFuzzParameters(60),
    )
    assertEveryReasonSeen(tally)
  })
})
