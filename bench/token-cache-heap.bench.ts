/**
 * What the verified-token cache really holds on the heap, against what it counts: a flood of
 * distinct valid tokens (8 KiB, the default `CBC_JWT_MAX_TOKEN_BYTES`, and a realistic ~600 B
 * token) through a verifier with the default bounds (10 000 entries, 16 MiB). The heap is
 * measured after full collections before and after the flood; the cache's own estimate
 * (`estimateEntryBytes`) is what enforces the bound, so the figure that matters is the real
 * heap per entry against the estimate per entry.
 *
 * `node --import tsx bench/token-cache-heap.bench.ts` (also part of `npm run bench`).
 */
import { loadKeyset } from '../src/lib/keyset/load.js'
import { MAX_CLAIMS_DEPTH } from '../src/lib/verifier/claims-cost.js'
import { createVerifier } from '../src/lib/verifier/verifier.js'
import { makeKey, makeKeyset, signToken } from '../test/support/keys.js'
import { AUDIENCE, benchClaims, ISSUER } from './fixtures.js'
import { gc, table } from './measure.js'

export interface HeapFloodResult {
  label: string
  tokenBytes: number
  tokens: number
  entries: number
  /** The cache's estimate of what it holds. */
  estimatedBytes: number
  /** The cache's bound on that estimate. */
  maxBytes: number
  /** Heap growth after the flood, full collections before and after. */
  heapGrowthBytes: number
}

/** Sends `tokens` distinct valid tokens of about `tokenBytes` each through one verifier. */
export async function heapFlood(label: string, tokenBytes: number, tokens: number): Promise<HeapFloodResult> {
  const now = Math.floor(Date.now() / 1000)
  const base = signToken(FLOOD_KEY, benchClaims(now)).length
  // The padding claim makes each token about tokenBytes long (base64url: 4 characters per 3 bytes).
  const pad = Math.max(0, Math.floor(((tokenBytes - base - 16) * 3) / 4))
  return flood(label, tokens, (i) => ({ ...benchClaims(now), jti: `flood-${i}`, pad: 'x'.repeat(pad) }))
}

/**
 * Claim shapes a token's holder can choose to make the cache hold more than it counts: each
 * fills a token of at most 8 KiB (the default `CBC_JWT_MAX_TOKEN_BYTES`) with the structure
 * whose heap is largest for its JSON. `i` makes every token distinct.
 */
export const ADVERSARIAL_SHAPES: Record<string, (i: number, n: number) => unknown> = {
  'empty objects in an array': (_i, n) => Array.from({ length: n }, () => ({})),
  'empty objects as properties': (_i, n) => Object.fromEntries(Array.from({ length: n }, (_, k) => [k.toString(36), {}])),
  'empty arrays': (_i, n) => Array.from({ length: n }, () => []),
  // Chains as deep as the verifier takes (MAX_CLAIMS_DEPTH: the claims object is the first level,
  // the claim's own array the second), side by side: n arrays in all.
  'nested arrays': (_i, n) => {
    const depth = MAX_CLAIMS_DEPTH - 2
    return Array.from({ length: Math.ceil(n / depth) }, () => {
      let v: unknown = []
      for (let k = 1; k < depth; k++) v = [v]
      return v
    })
  },
  'long distinct names': (i, n) => Object.fromEntries(Array.from({ length: Math.max(1, Math.floor(n / 40)) }, (_, k) => [`${i}-${k}-${'n'.repeat(100)}`, 0])),
  'many short names': (_i, n) => Object.fromEntries(Array.from({ length: Math.floor(n / 3) }, (_, k) => [k.toString(36), 0])),
  'fractional numbers': (_i, n) => Array.from({ length: Math.floor(n / 3) }, (_, k) => k + 0.5),
  'two-byte strings': (_i, n) => '€'.repeat(Math.floor(n / 3)),
}

/** The largest `n` whose token stays within 8 KiB, found by halving. */
function sizeShape(shape: (i: number, n: number) => unknown, now: number): number {
  const fits = (n: number) => signToken(FLOOD_KEY, { ...benchClaims(now), jti: 'flood-999999', x: shape(999_999, n) }).length <= 8192
  let lo = 1
  let hi = 8192
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2)
    if (fits(mid)) lo = mid
    else hi = mid - 1
  }
  return lo
}

/** A flood of distinct valid tokens of one adversarial shape, through a cache of `maxBytes`. */
export async function shapeFlood(name: string, tokens: number, maxBytes: number): Promise<HeapFloodResult> {
  const shape = ADVERSARIAL_SHAPES[name]!
  const now = Math.floor(Date.now() / 1000)
  const n = sizeShape(shape, now)
  return flood(name, tokens, (i) => ({ ...benchClaims(now), jti: `flood-${i}`, x: shape(i, n) }), maxBytes)
}

const FLOOD_KEY = makeKey('HS256', 'k-heap')

async function flood(label: string, tokens: number, claimsOf: (i: number) => Record<string, unknown>, maxBytes?: number): Promise<HeapFloodResult> {
  const keyset = loadKeyset(makeKeyset([FLOOD_KEY]))
  const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, clockToleranceSeconds: 30, maxTokenBytes: 8192, tokenCacheMaxBytes: maxBytes })
  gc()
  gc()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < tokens; i++) {
    // Made one at a time and dropped, so that only what the cache keeps survives.
    const token = signToken(FLOOD_KEY, claimsOf(i))
    const result = await verifier.verify(token, keyset)
    if (!result.ok) throw new Error(`flood token ${i} rejected: ${result.reason}`)
  }
  gc()
  gc()
  const heapGrowthBytes = process.memoryUsage().heapUsed - before
  const stats = verifier.tokenCache!.stats()
  const sample = signToken(FLOOD_KEY, claimsOf(tokens)).length
  return { label, tokenBytes: sample, tokens, entries: stats.entries, estimatedBytes: stats.bytes, maxBytes: stats.maxBytes, heapGrowthBytes }
}

const MiB = 1024 * 1024
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`

export function printHeapFlood(results: readonly HeapFloodResult[]) {
  console.log('\nVerified-token cache under a flood of distinct valid tokens (default bounds: 10 000 entries, 16 MiB counted):')
  console.log(
    table(
      ['flood', 'token', 'tokens sent', 'entries kept', 'estimate', 'heap growth', 'heap / estimate', 'heap / 16 MiB'],
      results.map((r) => [
        r.label,
        `${r.tokenBytes} B`,
        r.tokens.toLocaleString('en-US'),
        r.entries.toLocaleString('en-US'),
        mib(r.estimatedBytes),
        mib(r.heapGrowthBytes),
        `${(r.heapGrowthBytes / r.estimatedBytes).toFixed(2)}×`,
        `${(r.heapGrowthBytes / r.maxBytes).toFixed(2)}×`,
      ]),
    ),
  )
}

/** The floods `npm run bench` reports. */
export const HEAP_FLOODS = async () => {
  const results = [await heapFlood('8 KiB tokens', 8000, 20_000), await heapFlood('typical tokens', 600, 30_000)]
  for (const name of Object.keys(ADVERSARIAL_SHAPES)) results.push(await shapeFlood(name, 1500, 16 * 1024 * 1024))
  return results
}

if (import.meta.url === `file://${process.argv[1]}`) printHeapFlood(await HEAP_FLOODS())
