import assert from 'node:assert/strict'
import { KeysetInvalidError, type KeysetProblem } from '../../../src/lib/errors.js'
import { PRIVATE_JWK_MEMBERS } from '../../../src/lib/keyset/algorithms.js'

/** Runs `fn`, which must throw a `KeysetInvalidError`, and returns it. */
export function invalid(fn: () => unknown): KeysetInvalidError {
  try {
    fn()
  } catch (err) {
    if (err instanceof KeysetInvalidError) return err
    throw new Error(`expected a KeysetInvalidError, got ${String(err)}`, { cause: err })
  }
  assert.fail('expected a KeysetInvalidError, but the keyset was accepted')
}

/** The problems as `path: message` lines, the way the CLI prints them. */
export function lines(problems: readonly KeysetProblem[]): string[] {
  return problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message))
}

/** Every private or symmetric JWK member value anywhere in `doc` (keys[].jwk.d, .k, .p, …). */
export function privateValues(doc: unknown): string[] {
  const out: string[] = []
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk)
    if (typeof v !== 'object' || v === null) return
    for (const [name, member] of Object.entries(v)) {
      if ((PRIVATE_JWK_MEMBERS as readonly string[]).includes(name) && typeof member === 'string' && member.length >= 8) out.push(member)
      else walk(member)
    }
  }
  walk(doc)
  return out
}

/** Asserts that no private JWK value of `doc` (nor a 12-character slice of one) occurs in `text`. */
export function assertNoPrivateMaterial(text: string, doc: unknown, what = 'text'): void {
  for (const value of privateValues(doc)) {
    for (let i = 0; i + 12 <= value.length; i += 12) {
      const slice = value.slice(i, i + 12)
      assert.ok(!text.includes(slice), `${what} contains private key material (${slice}…)`)
    }
  }
}

/** A deep copy, to break one field of a fixture without touching the others. */
export function clone<T>(v: T): T {
  return structuredClone(v)
}
