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

/** Freezes `value` and everything in it, and returns the heap bytes it holds (see above). */
export function freezeAndCost(value: unknown): number {
  // Strings dominate a large token's heap and are counted almost exactly: a 1/16 margin keeps
  // the count above the heap whatever the allocator's slack.
  if (typeof value === 'string') return STRING_BYTES + Math.ceil(((value.length > 0 && TWO_BYTE.test(value) ? 2 : 1) * value.length * 17) / 16)
  if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) < SMALL_INTEGER ? 0 : NUMBER_BYTES
  if (typeof value !== 'object' || value === null) return 0
  Object.freeze(value)
  if (Array.isArray(value)) {
    let bytes = ARRAY_BYTES + ELEMENT_BYTES * value.length
    for (let i = 0; i < value.length; i++) bytes += freezeAndCost(value[i])
    return bytes
  }
  let bytes = OBJECT_BYTES
  // for…in, not Object.entries: no array allocated per verification for the usual flat claims.
  for (const name in value) {
    bytes +=
      (SHARED_NAMES.has(name) ? SHARED_PROPERTY_BYTES : PROPERTY_BYTES + NAME_BYTES + 2 * name.length) + freezeAndCost((value as Record<string, unknown>)[name])
  }
  return bytes
}
