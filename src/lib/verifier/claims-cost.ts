/**
 * The heap a token's parsed claims hold, counted while they are frozen (one walk does both).
 *
 * The verified-token cache is bounded in bytes, and a valid token chooses its claims: an
 * estimate from the payload's length alone let many empty `{}` or nested `[]` (2 characters of
 * JSON, 40–64 bytes of heap each) hold 6× the bound. So every node is counted by its kind, from
 * upper bounds of V8's layout on a 64-bit heap, measured with JSON.parse over adversarial shapes
 * (`bench/token-cache-heap.bench.ts`); the real heap stays below the count for any shape.
 */

/** A JSON object: header, properties and elements pointers, four in-object slots. */
const OBJECT_BYTES = 64
/** One property of an object: its slot, its share of the map or dictionary entry. */
const PROPERTY_BYTES = 56
/** A property name: an internalized string (header + characters); distinct names also cost map transitions. */
const NAME_BYTES = 40
/**
 * A property whose name every token uses: V8 shares the name and the hidden-class transition
 * between all tokens, so the property costs its slot. Only names of registered and common
 * claims: a token cannot make these distinct, so it cannot make them cost more.
 */
const SHARED_PROPERTY_BYTES = 16
const SHARED_NAMES = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'nbf',
  'iat',
  'jti',
  'client_id',
  'azp',
  'scope',
  'scp',
  'cnf',
  'act',
  'auth_time',
  'acr',
  'amr',
  'sid',
  'nonce',
  'email',
  'email_verified',
  'name',
  'roles',
  'groups',
  'entitlements',
  'tenant',
  'typ',
  'kid',
  'alg',
])
/** A JSON array: header and its backing store's header. */
const ARRAY_BYTES = 48
/** One array element: its slot, with room for the backing store's growth. */
const ELEMENT_BYTES = 16
/** A string's header and allocation rounding; its characters cost one byte each, two when any is outside Latin-1. */
const STRING_BYTES = 32
/** A number that is not a small integer is a boxed double; a small integer lives in its slot. */
const NUMBER_BYTES = 16
const SMALL_INTEGER = 2 ** 30

const TWO_BYTE = /[^\x00-\xff]/

/**
 * How deep a token's claims may nest (the claims object is level 1). Deeper is `malformed`:
 * whatever handles the claims after the verifier — `/v1/whoami`'s serializer, an adopter's
 * `res.json(req.auth.claims)`, a structured clone — may recurse, and a signed token could nest
 * far past the call stack (`CBC_JWT_MAX_TOKEN_BYTES` allows ~20 000 levels). No real token
 * nests claims near this; serde_json's default limit is the same.
 */
export const MAX_CLAIMS_DEPTH = 128

/**
 * Freezes `value` and everything in it, and returns the heap bytes it holds (see above);
 * `undefined` when it nests deeper than `MAX_CLAIMS_DEPTH`.
 *
 * A loop, not recursion: it must reach the depth to refuse it. Nested objects and arrays wait
 * on a list made only when the claims have any.
 */
export function freezeAndCost(value: unknown): number | undefined {
  return walk(value, true)
}

/**
 * Whether claims about to be signed nest deeper than `MAX_CLAIMS_DEPTH`: the verifier would
 * answer the token `malformed`, so `sign()` refuses it. The caller's object is not frozen.
 */
export function nestsTooDeep(claims: object): boolean {
  return walk(claims, false) === undefined
}

function walk(value: unknown, freeze: boolean): number | undefined {
  if (typeof value !== 'object' || value === null) return leafCost(value)
  let bytes = 0
  let pending: object[] | undefined
  let depths: number[] | undefined
  let node: object | undefined = value
  let depth = 1
  while (node !== undefined) {
    if (freeze) Object.freeze(node)
    if (Array.isArray(node)) {
      bytes += ARRAY_BYTES + ELEMENT_BYTES * node.length
      for (let i = 0; i < node.length; i++) {
        const child: unknown = node[i]
        if (typeof child === 'object' && child !== null) {
          if (depth === MAX_CLAIMS_DEPTH) return undefined
          pending ??= []
          depths ??= []
          pending.push(child)
          depths.push(depth + 1)
        } else bytes += leafCost(child)
      }
    } else {
      bytes += OBJECT_BYTES
      // for…in, not Object.entries: no array allocated per verification for the usual flat claims.
      for (const name in node) {
        bytes += SHARED_NAMES.has(name) ? SHARED_PROPERTY_BYTES : PROPERTY_BYTES + NAME_BYTES + 2 * name.length
        const child: unknown = (node as Record<string, unknown>)[name]
        if (typeof child === 'object' && child !== null) {
          if (depth === MAX_CLAIMS_DEPTH) return undefined
          pending ??= []
          depths ??= []
          pending.push(child)
          depths.push(depth + 1)
        } else bytes += leafCost(child)
      }
    }
    node = pending?.pop()
    depth = depths?.pop() ?? 0
  }
  return bytes
}

/** A string, a number, a boolean or null. */
function leafCost(value: unknown): number {
  // Strings dominate a large token's heap and are counted almost exactly: a 1/16 margin keeps
  // the count above the heap whatever the allocator's slack.
  if (typeof value === 'string') return STRING_BYTES + Math.ceil(((value.length > 0 && TWO_BYTE.test(value) ? 2 : 1) * value.length * 17) / 16)
  if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) < SMALL_INTEGER ? 0 : NUMBER_BYTES
  return 0
}
