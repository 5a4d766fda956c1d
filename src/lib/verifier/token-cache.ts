import type { KeyObject } from 'node:crypto'
import type { Alg } from '../keyset/algorithms.js'
import type { JwtClaims } from './claims.js'
import type { IssuerRoute } from './issuer-route.js'
import { OPTIONS } from '../options-table.js'

/**
 * One verified token: what a full verification established once (the signature, made by this
 * key material, over these claims). Everything that can change with time or with the keyset —
 * the key still loaded with the same material, `not_after`, `exp`, `nbf`, `iat`,
 * `revoked_before`, `iss`, `aud` — is checked again on every hit by the verifier.
 */
export interface CachedAcceptance {
  readonly kid: string
  readonly alg: Alg
  /** The material the signature verified with; a reload that changes it makes a new KeyObject. */
  readonly verifyKey: KeyObject
  readonly claims: JwtClaims
  /** Heap bytes held by this entry, counted (token string + claims node by node + bookkeeping). */
  readonly bytes: number
  /** The trusted issuer whose keys and rules accepted it; undefined for the keyset's own tokens. */
  readonly route?: IssuerRoute | undefined
}

/** Counts since start; read by the metrics at scrape time. */
export interface TokenCacheStats {
  /** Lookups answered from the cache. */
  hits: number
  /** Lookups not answered from the cache (absent, or no longer valid and dropped). */
  misses: number
  /** Entries dropped to stay within the entry or byte bound. */
  evictions: number
  entries: number
  /** Estimated bytes held (see `estimateEntryBytes`). */
  bytes: number
  maxEntries: number
  maxBytes: number
}

export interface TokenCacheOptions {
  /** At most this many tokens are held; must be ≥ 1 (a verifier without a cache has none). */
  maxEntries: number
  /** At most this many estimated bytes are held. @default 16 MiB */
  maxBytes?: number | undefined
}

export interface TokenCache {
  /** The acceptance cached for exactly this token string, counted as a hit or a miss. */
  lookup(token: string): CachedAcceptance | undefined
  /** Records the lookup that was just made as a miss after all (the entry no longer held). */
  drop(token: string): void
  store(token: string, entry: CachedAcceptance): void
  clear(): void
  stats(): TokenCacheStats
}

export const DEFAULT_TOKEN_CACHE_MAX_BYTES = OPTIONS.tokenCacheMaxBytes.default

/**
 * Per-entry overhead beyond the token's characters and the claims (counted node by node, see
 * `claims-cost.ts`): the Map slot, the slot object, a token that is a cons or sliced string,
 * and a margin for allocation slack. Checked with `bench/token-cache-heap.bench.ts`.
 */
const ENTRY_OVERHEAD_BYTES = 256

/**
 * Heap held by one entry: the token is ASCII (one byte per character in V8), the claims as
 * counted while they were frozen, and the entry's own overhead.
 */
export function estimateEntryBytes(token: string, claimsBytes: number): number {
  // The token string: its characters plus its header, with the same 1/16 margin as the claims' strings.
  return Math.ceil((token.length * 17) / 16) + 24 + claimsBytes + ENTRY_OVERHEAD_BYTES
}

/**
 * A map from the exact token string to its cached acceptance, bounded by entries and by
 * estimated bytes, whichever is reached first. Eviction is CLOCK (second chance) over a ring
 * of positions: a hit only marks its entry used, so the hot path is one `Map.get` (an LRU's
 * delete and re-insert on every hit cost a third of a cached request); to make room the hand
 * walks the ring, clears the mark of a used entry and evicts the first unused one. An entry
 * stored and never used again goes before one that is in use, as with LRU. The ring is an
 * array, not the Map's own insertion order: taking the Map's oldest key walks past every
 * entry deleted since the Map last compacted itself (thousands, once a flood of new tokens
 * keeps the cache full), which made a cache miss cost as much as an HMAC check. Rejections
 * are never stored (the verifier only stores acceptances). An entry larger than an eighth of
 * the byte bound is not stored at all, so a few huge tokens cannot flush every ordinary one.
 *
 * Once the cache is full, a token is admitted only the second time it is offered (a
 * "doorkeeper", as in TinyLFU): storing it would evict an entry, and a token seen once is
 * likelier never to come back than the entry it would push out. A flood of distinct tokens —
 * a wave of fresh logins, a client minting a token per request, a holder of many valid
 * tokens — then neither flushes the clients that repeat nor pays, for every token, a store,
 * an eviction and an entry that lives just long enough to be promoted to the old generation
 * and die there (what made cache on cost more than cache off on distinct tokens, measured in
 * docs/performance.md). The doorkeeper remembers a number per token (the slot key) in a
 * fixed array sized to the cache, so a token offered again after about as many other misses
 * as the cache holds entries is usually admitted, and one seen long before usually is not.
 * It decides only what is kept: every answer is the same as without it.
 */
export function createTokenCache(options: TokenCacheOptions): TokenCache {
  const maxEntries = options.maxEntries
  const maxBytes = options.maxBytes ?? DEFAULT_TOKEN_CACHE_MAX_BYTES
  if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new RangeError('maxEntries must be an integer ≥ 1')
  if (!Number.isInteger(maxBytes) || maxBytes < 1024) throw new RangeError('maxBytes must be an integer ≥ 1024')
  const maxEntryBytes = Math.floor(maxBytes / 8)
  // Keyed by a number from the token's last characters (see `slotKey`); a slot holds the whole token.
  const map = new Map<number, Slot>()
  // CLOCK's ring: every slot at its position; `undefined` at a freed position until reused.
  const ring: Array<Slot | undefined> = []
  const freed: number[] = []
  // The doorkeeper: slot key + 1 of tokens offered once while full (0: empty), in buckets of
  // DOORKEEPER_WAYS chosen by the key's low bits. One slot per entry the bounds allow (an entry
  // costs at least its overhead), rounded up to a power of two: 16,384 slots (64 KiB) for the
  // defaults, under 4 % of the byte bound at most.
  const doorkeeper = new Int32Array(Math.max(DOORKEEPER_WAYS, powerOfTwoAtLeast(Math.min(maxEntries, Math.floor(maxBytes / ENTRY_OVERHEAD_BYTES)))))
  const bucketMask = doorkeeper.length / DOORKEEPER_WAYS - 1
  let nextWay = 0

  /** Whether this token was offered before (its mark is then cleared); if not, marks it. */
  function offeredBefore(key: number): boolean {
    const bucket = (key & bucketMask) * DOORKEEPER_WAYS
    for (let way = bucket; way < bucket + DOORKEEPER_WAYS; way++) {
      if (doorkeeper[way] === key + 1) {
        doorkeeper[way] = 0
        return true
      }
    }
    // Not found: the mark replaces one of the bucket's, the way chosen in turn across the table.
    doorkeeper[bucket + nextWay] = key + 1
    nextWay = (nextWay + 1) % DOORKEEPER_WAYS
    return false
  }
  let hand = 0
  let bytes = 0
  let hits = 0
  let misses = 0
  let evictions = 0

  function release(slot: Slot): void {
    map.delete(slot.key)
    ring[slot.position] = undefined
    freed.push(slot.position)
    bytes -= slot.bytes
  }

  /** Removes the slot of this key, whichever token it holds. */
  function removeKey(key: number): void {
    const slot = map.get(key)
    if (slot !== undefined) release(slot)
  }

  function evictOne(): void {
    // Ends: only called with an entry held, and each pass over a used one clears its mark, so
    // within two laps an unused one comes up.
    for (;;) {
      const slot = ring[hand]
      hand = hand + 1 === ring.length ? 0 : hand + 1
      if (slot === undefined) continue
      if (slot.used) {
        slot.used = false
        continue
      }
      release(slot)
      evictions++
      return
    }
  }

  return {
    lookup(token) {
      const slot = map.get(slotKey(token))
      // The whole token must be the one stored: the key only finds the slot.
      if (slot === undefined || slot.token !== token) {
        misses++
        return undefined
      }
      hits++
      slot.used = true
      return slot
    },
    drop(token) {
      // The caller found the entry stale: it was counted as a hit, it is a miss.
      hits--
      misses++
      const key = slotKey(token)
      if (map.get(key)?.token === token) removeKey(key)
    },
    store(token, entry) {
      if (entry.bytes > maxEntryBytes) return
      const key = slotKey(token)
      // Full: storing evicts. The first offer of a token only leaves its mark.
      if ((map.size >= maxEntries || bytes + entry.bytes > maxBytes) && !offeredBefore(key)) return
      // Another accepted token with the same key (rare: see `slotKey`) gives up its slot; it
      // is verified again when it comes back.
      removeKey(key)
      while (map.size > 0 && (map.size + 1 > maxEntries || bytes + entry.bytes > maxBytes)) evictOne()
      // The new entry takes a freed position, which the hand has just passed (or a new one at
      // the end): it gets a whole lap before the hand comes back, so it is never the one
      // evicted to make room for itself.
      const position = freed.pop() ?? ring.length
      // One object per token, the acceptance copied in: a hit then reads one object, not two.
      const slot: Slot = {
        token,
        kid: entry.kid,
        alg: entry.alg,
        verifyKey: entry.verifyKey,
        claims: entry.claims,
        bytes: entry.bytes,
        route: entry.route,
        used: false,
        key,
        position,
      }
      ring[position] = slot
      map.set(key, slot)
      bytes += entry.bytes
    },
    clear() {
      map.clear()
      ring.length = 0
      freed.length = 0
      doorkeeper.fill(0)
      hand = 0
      bytes = 0
    },
    stats: () => ({ hits, misses, evictions, entries: map.size, bytes, maxEntries, maxBytes }),
  }
}

/**
 * Marks per doorkeeper bucket. With one, two tokens that recur together and share a slot
 * overwrite each other's mark at every offer and neither is ever admitted (a test shows it for
 * a few percent of 1,000 recurring tokens); with four, a mark survives another landing in its
 * bucket three times in four.
 */
const DOORKEEPER_WAYS = 4

function powerOfTwoAtLeast(n: number): number {
  let size = 1
  while (size < n) size *= 2
  return size
}

/** Characters of a token's end that make its slot's key. */
const KEY_CHARACTERS = 8

/**
 * The number that keys a token's slot: its last 8 characters folded into 30 bits. A Map hashes
 * every character of a new string key, and each request brings a new string: hashing a whole
 * 500-character token took ≈ 1 µs, most of a cached verification (a 32-character slice as key
 * still cost ≈ 0.5 µs in a server's profile: hashing and comparing a sliced string). A small
 * integer hashes for nothing. The last characters are signature bytes, as good as random, so
 * slots rarely collide; the slot then compares the whole token, so a collision, or a forged
 * token that ends like a cached one, is only a miss (and a token is stored only after its
 * signature verified).
 */
function slotKey(token: string): number {
  let key = 0
  for (let i = Math.max(0, token.length - KEY_CHARACTERS); i < token.length; i++) key = (Math.imul(key, 131) + token.charCodeAt(i)) | 0
  return key & 0x3fffffff
}

/**
 * A cached acceptance, the exact token it is for, its CLOCK mark (used since it was stored or
 * last passed over), its key in the map and its position in the ring.
 */
interface Slot extends CachedAcceptance {
  readonly token: string
  used: boolean
  readonly key: number
  readonly position: number
}
