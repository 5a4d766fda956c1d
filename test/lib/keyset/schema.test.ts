import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it } from 'node:test'
import { Ajv } from 'ajv'
import addFormatsModule from 'ajv-formats'
import { ALGORITHMS, ALG_SPECS, PRIVATE_JWK_MEMBERS } from '../../../src/lib/keyset/algorithms.js'
import { KEYSET_SCHEMA_URL, jsonPath, schemaProblems } from '../../../src/lib/keyset/schema.js'
import { makeKey, makeKeyset } from '../../support/keys.js'
import { lines } from './fixtures.js'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const SHIPPED = path.join(ROOT, 'schema/keyset.schema.json')
const schema = JSON.parse(fs.readFileSync(SHIPPED, 'utf8')) as {
  definitions: { key: { properties: { alg: { enum: string[] } } }; jwk: { properties: Record<string, unknown> & { kty: { enum: string[] } } } }
}
const es = makeKey('ES256', 'k-1')

describe('the shipped JSON Schema (schema/keyset.schema.json)', () => {
  it('is the file the validator uses and the one package.json exports', () => {
    assert.equal(fileURLToPath(KEYSET_SCHEMA_URL), SHIPPED)
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, string>; files: string[] }
    assert.equal(pkg.exports['./schema/keyset.schema.json'], './schema/keyset.schema.json')
    assert.ok(pkg.files.includes('schema'))
  })

  it('compiles on its own in strict mode, as an integrator would use it, and accepts a keyset', () => {
    const ajv = new Ajv({ allErrors: true, strict: true })
    addFormatsModule.default(ajv, ['date-time'])
    const validate = ajv.compile(schema)
    assert.equal(validate(makeKeyset([es])), true, JSON.stringify(validate.errors))
    assert.equal(validate({ ...makeKeyset([es]), extra: 1 }), false)
  })

  it('lists exactly the algorithms of the code, and the key types they need', () => {
    assert.deepEqual(schema.definitions.key.properties.alg.enum, [...ALGORITHMS])
    assert.deepEqual(new Set(schema.definitions.jwk.properties.kty.enum), new Set(Object.values(ALG_SPECS).map((s) => s.kty)))
  })

  it('knows every private JWK member the code redacts (except RSA "oth", refused as unknown)', () => {
    for (const m of PRIVATE_JWK_MEMBERS) {
      if (m === 'oth') assert.ok(!(m in schema.definitions.jwk.properties))
      else assert.ok(m in schema.definitions.jwk.properties, `schema misses ${m}`)
    }
  })
})

describe('schemaProblems: every problem, with its JSON path', () => {
  it('a valid document has none', () => {
    assert.deepEqual(schemaProblems(makeKeyset([es])), [])
  })

  it('not an object', () => {
    for (const v of [null, [], 'x', 1]) assert.deepEqual(lines(schemaProblems(v)), ['must be object'])
  })

  it('lists all of them at once, top level and per key', () => {
    const doc = {
      version: 2,
      current: 'k 1',
      keys: [{ kid: 'k-1', alg: 'none', created_at: '2026-11-25', jwk: { kty: 'EC', use: 'enc', d: 'a+b', foo: 1 } }, { kid: 'k-2' }],
      extra: true,
    }
    assert.deepEqual(lines(schemaProblems(doc)), [
      'extra: unknown field',
      'version: must be 1',
      'current: must be 1–128 characters of [A-Za-z0-9._:-]',
      `keys[0].alg: must be one of ${ALGORITHMS.join(', ')}`,
      'keys[0].created_at: must be an RFC 3339 date-time (e.g. 2026-11-25T21:16:00Z)',
      'keys[0].jwk.foo: unknown field',
      'keys[0].jwk.use: must be "sig"',
      'keys[0].jwk.d: must be base64url',
      'keys[1].alg: is required',
      'keys[1].created_at: is required',
      'keys[1].jwk: is required',
    ])
  })

  it('required top-level fields and an empty key list', () => {
    assert.deepEqual(lines(schemaProblems({})), ['version: is required', 'current: is required', 'keys: is required'])
    assert.deepEqual(lines(schemaProblems({ version: 1, current: 'a', keys: [] })), ['keys: must NOT have fewer than 1 items'])
  })
})

describe('jsonPath', () => {
  it('turns a JSON pointer into the path the messages use', () => {
    assert.equal(jsonPath('/keys/2/jwk/crv'), 'keys[2].jwk.crv')
    assert.equal(jsonPath('', 'version'), 'version')
    assert.equal(jsonPath('/keys/0', 'not_after'), 'keys[0].not_after')
    assert.equal(jsonPath('/a~1b/c~0d'), 'a/b.c~d')
  })
})
