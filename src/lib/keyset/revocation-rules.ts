import type { KeysetProblem } from '../errors.js'
import { asciiJson } from '../logging/sanitize.js'
import { MAX_REVOCATION_RULES, MAX_REVOCATION_VALUE_CHARS, REVOCATION_KINDS, ruleTarget, type KeysetDocument, type RevocationRule } from './document.js'

const DATE_MESSAGE = 'must be an RFC 3339 date-time (e.g. 2026-11-25T21:16:00Z)'
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/
const CONTROL = /[\u0000-\u001f\u007f]/
const TIME_FIELD = { client_id: 'issued_before', sub: 'issued_before', jti: 'expires_at' } as const

/**
 * What is wrong with the shape of one rule, in words an operator can act on. The schema
 * describes a rule as one of three shapes (`oneOf`), and a validator's account of a `oneOf`
 * failure lists every branch's complaint; the schema's verdict stands, this says why.
 */
export function ruleShapeProblems(rule: unknown, at: string): KeysetProblem[] {
  if (typeof rule !== 'object' || rule === null || Array.isArray(rule)) {
    return [{ path: at, message: 'must be an object naming one of client_id, sub or jti' }]
  }
  const r = rule as Record<string, unknown>
  const named = REVOCATION_KINDS.filter((kind) => kind in r)
  if (named.length === 0) return [{ path: at, message: 'must name one of client_id, sub or jti' }]
  if (named.length > 1) return [{ path: at, message: `names ${named.join(' and ')}; a rule names exactly one` }]
  const kind = named[0]!
  const timeField = TIME_FIELD[kind]
  const problems: KeysetProblem[] = []
  const value = r[kind]
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_REVOCATION_VALUE_CHARS || CONTROL.test(value)) {
    problems.push({ path: `${at}.${kind}`, message: `must be 1–${MAX_REVOCATION_VALUE_CHARS} characters without control characters` })
  }
  for (const field of [timeField, 'created_at']) {
    if (!(field in r)) problems.push({ path: `${at}.${field}`, message: 'is required' })
    else if (typeof r[field] !== 'string' || !RFC3339.test(r[field] as string)) problems.push({ path: `${at}.${field}`, message: DATE_MESSAGE })
  }
  for (const field of Object.keys(r)) {
    if (field === kind || field === timeField || field === 'created_at') continue
    const wrongTime = field === 'issued_before' || field === 'expires_at'
    problems.push({ path: `${at}.${field}`, message: wrongTime ? `a ${kind} rule takes ${timeField}, not ${field}` : 'unknown field' })
  }
  return problems
}

/** The message for a list past the bound, with what to do about it. */
export function tooManyRulesMessage(count: number): string {
  return `${count} rules; at most ${MAX_REVOCATION_RULES} are allowed (revoke a whole client or subject rather than its tokens one jti at a time)`
}

/**
 * The meaning of `revocations`, on rules whose shape is sound: every date readable, and one
 * rule per client, subject or token id (a second rule for the same one is a mistake to look
 * at, not something to merge silently).
 */
export function revocationMeaningProblems(doc: KeysetDocument, sound: (path: string) => boolean): KeysetProblem[] {
  if (!Array.isArray(doc.revocations)) return []
  const problems: KeysetProblem[] = []
  const first = new Map<string, number>()
  doc.revocations.forEach((rule: RevocationRule, i) => {
    const at = `revocations[${i}]`
    if (!sound(at)) return
    for (const [field, text] of Object.entries(rule)) {
      if (field.endsWith('_at') || field === 'issued_before') {
        if (!Number.isFinite(Date.parse(text))) problems.push({ path: `${at}.${field}`, message: DATE_MESSAGE })
      }
    }
    const { kind, value } = ruleTarget(rule)
    const key = `${kind}\u0000${value}`
    const seen = first.get(key)
    if (seen === undefined) first.set(key, i)
    else problems.push({ path: `${at}.${kind}`, message: `a second rule for ${kind} ${asciiJson(value)} (also revocations[${seen}])` })
  })
  return problems
}
