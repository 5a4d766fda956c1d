const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const VALUE = new Int8Array(128).fill(-1)
for (let i = 0; i < ALPHABET.length; i++) VALUE[ALPHABET.charCodeAt(i)] = i

/**
 * True when `text` — already known to hold only base64url characters — is the one unpadded
 * spelling of its bytes: no impossible length, no set bits past the last whole byte.
 * `Buffer.from(…, 'base64url')` accepts every non-canonical twin, so this runs before decoding.
 */
export function hasCanonicalBase64urlTail(text: string): boolean {
  const rest = text.length % 4
  if (rest === 0) return true
  if (rest === 1) return false
  const last = VALUE[text.charCodeAt(text.length - 1)]!
  return last >= 0 && (last & (rest === 2 ? 0x0f : 0x03)) === 0
}
