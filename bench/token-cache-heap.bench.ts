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
  const key = makeKey('HS256', 'k-heap')
  const keyset = loadKeyset(makeKeyset([key]))
  const verifier = createVerifier({ issuer: ISSUER, audience: AUDIENCE, clockToleranceSeconds: 30, maxTokenBytes: 8192 })
  const now = Math.floor(Date.now() / 1000)
  const base = signToken(key, benchClaims(now)).length
  // The padding claim makes each token about tokenBytes long (base64url: 4 characters per 3 bytes).
  const pad = Math.max(0, Math.floor(((tokenBytes - base - 16) * 3) / 4))
  gc()
  gc()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < tokens; i++) {
    // Made one at a time and dropped, so that only what the cache keeps survives.
    const token = signToken(key, { ...benchClaims(now), jti: `flood-${i}`, pad: 'x'.repeat(pad) })
    const result = await verifier.verify(token, keyset)
    if (!result.ok) throw new Error(`flood token ${i} rejected: ${result.reason}`)
  }
  gc()
  gc()
  const heapGrowthBytes = process.memoryUsage().heapUsed - before
  const stats = verifier.tokenCache!.stats()
  const sample = signToken(key, { ...benchClaims(now), jti: 'flood-x', pad: 'x'.repeat(pad) }).length
  return { label, tokenBytes: sample, tokens, entries: stats.entries, estimatedBytes: stats.bytes, maxBytes: stats.maxBytes, heapGrowthBytes }
}

const MiB = 1024 * 1024
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`

export function printHeapFlood(results: readonly HeapFloodResult[]) {
  console.log('\nVerified-token cache under a flood of distinct valid tokens (default bounds: 10 000 entries, 16 MiB estimated):')
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
export const HEAP_FLOODS = async () => [await heapFlood('8 KiB tokens', 8000, 20_000), await heapFlood('typical tokens', 600, 30_000)]

if (import.meta.url === `file://${process.argv[1]}`) printHeapFlood(await HEAP_FLOODS())
