import type { KeysetDocument } from '../../../src/lib/keyset/document.js'
import { generateKeyEntry, toRfc3339 } from '../../../src/lib/keyset/generate.js'
import type { KeyFactory } from '../../../src/ops/rotation/types.js'

export const T0 = Date.parse('2026-11-25T00:00:00Z')
export const MIN = 60_000
export const HOUR = 3_600_000
export const DAY = 24 * HOUR

/** A real ES256 key factory that also records the kids it made. */
export function recordingFactory(): { newKey: KeyFactory; made: string[] } {
  const made: string[] = []
  return {
    made,
    newKey: async (alg, opts) => {
      const entry = await generateKeyEntry(alg, opts)
      made.push(entry.kid)
      return entry
    },
  }
}

/** A valid keyset with one current key created at `createdAt`. */
export async function keysetAt(createdAt: number, alg: 'ES256' | 'HS256' = 'ES256'): Promise<KeysetDocument> {
  const entry = await generateKeyEntry(alg, { now: new Date(createdAt) })
  return { version: 1, current: entry.kid, keys: [entry] }
}

export function entry(doc: KeysetDocument, kid: string) {
  const e = doc.keys.find((k) => k.kid === kid)
  if (!e) throw new Error(`no key ${kid} in ${doc.keys.map((k) => k.kid).join(', ')}`)
  return e
}

export const iso = (ms: number) => toRfc3339(new Date(ms))
