/**
 * `typ` values accepted (RFC 7515 §4.1.9: compared case-insensitively, `application/` may be
 * omitted): none at all, `JWT`, or the access-token type `at+jwt` of RFC 9068.
 */
const ACCEPTED_TYPES = new Set(['jwt', 'at+jwt', 'application/jwt', 'application/at+jwt'])

export function acceptableType(typ: unknown): boolean {
  return typ === undefined || (typeof typ === 'string' && ACCEPTED_TYPES.has(typ.toLowerCase()))
}
