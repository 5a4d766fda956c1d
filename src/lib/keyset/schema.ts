import fs from 'node:fs'
import { createRequire } from 'node:module'
import type { ErrorObject } from 'ajv'
import type { KeysetProblem } from '../errors.js'
import { printable } from '../logging/sanitize.js'
import { ruleShapeProblems, tooManyRulesMessage } from './revocation-rules.js'

/** The JSON Schema shipped with the package (`schema/keyset.schema.json`). */
export const KEYSET_SCHEMA_URL = new URL('../../../schema/keyset.schema.json', import.meta.url)

// ajv is loaded on the first validation, not when cbc-jwt is imported: about 100 ms of CPU an
// API would otherwise pay at start-up before it needs a keyset.
const require = createRequire(import.meta.url)

let compiled: (((data: unknown) => boolean) & { errors?: ErrorObject[] | null }) | undefined

function validator() {
  if (!compiled) {
    const { Ajv } = require('ajv') as typeof import('ajv')
    // ajv-formats is CommonJS with `exports.default`.
    const addFormats = (require('ajv-formats') as typeof import('ajv-formats')).default
    const ajv = new Ajv({ allErrors: true, strict: true })
    addFormats(ajv, ['date-time'])
    compiled = ajv.compile(JSON.parse(fs.readFileSync(KEYSET_SCHEMA_URL, 'utf8')))
  }
  return compiled
}

/** Checks `data` against the keyset schema; returns every problem with its JSON path. */
export function schemaProblems(data: unknown): KeysetProblem[] {
  const validate = validator()
  if (validate(data)) return []
  const problems: KeysetProblem[] = []
  // A rule is one of three shapes: the validator's account of a failed `oneOf` is every
  // branch's complaint, so each faulty rule is described once, in its own words.
  const faultyRules = new Set<number>()
  for (const e of validate.errors ?? []) {
    const rule = /^\/revocations\/(\d+)(?:\/|$)/.exec(e.instancePath)
    if (rule) faultyRules.add(Number(rule[1]))
    else if (e.instancePath === '/revocations' && e.keyword === 'maxItems') {
      problems.push({ path: 'revocations', message: tooManyRulesMessage((data as { revocations: unknown[] }).revocations.length) })
    } else problems.push(toProblem(e))
  }
  const rules = (data as { revocations?: unknown[] } | null)?.revocations
  for (const i of faultyRules) {
    const described = ruleShapeProblems(rules?.[i], `revocations[${i}]`)
    problems.push(...(described.length > 0 ? described : [{ path: `revocations[${i}]`, message: 'is not a valid rule' }]))
  }
  return problems
}

/** `/keys/2/jwk/crv` → `keys[2].jwk.crv` */
export function jsonPath(pointer: string, child?: string): string {
  const parts = pointer
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
  if (child !== undefined) parts.push(child)
  return parts.reduce((acc, part) => (/^\d+$/.test(part) ? `${acc}[${part}]` : acc ? `${acc}.${part}` : part), '')
}

function toProblem(e: ErrorObject): KeysetProblem {
  const params = e.params as Record<string, unknown>
  switch (e.keyword) {
    case 'required':
      return { path: jsonPath(e.instancePath, String(params.missingProperty)), message: 'is required' }
    case 'additionalProperties':
      // The name is the document's, not the schema's: escaped and bounded, as any text a terminal shows.
      return { path: jsonPath(e.instancePath, printable(String(params.additionalProperty), { max: 64 })), message: 'unknown field' }
    case 'enum':
      return { path: jsonPath(e.instancePath), message: `must be one of ${(params.allowedValues as unknown[]).join(', ')}` }
    case 'const':
      return { path: jsonPath(e.instancePath), message: `must be ${JSON.stringify(params.allowedValue)}` }
    case 'format':
      return { path: jsonPath(e.instancePath), message: 'must be an RFC 3339 date-time (e.g. 2026-11-25T21:16:00Z)' }
    case 'pattern':
      return {
        path: jsonPath(e.instancePath),
        message: /kid$|current$/.test(e.instancePath) ? 'must be 1–128 characters of [A-Za-z0-9._:-]' : 'must be base64url',
      }
    default:
      return { path: jsonPath(e.instancePath), message: e.message ?? 'is invalid' }
  }
}
