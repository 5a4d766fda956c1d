// The one-pass scan that finds a member named twice in one object, against JSON.parse itself:
// no text JSON.stringify writes has one (it cannot), and one name repeated in any object of any
// document is found, however its text is spelt and wherever the object sits.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { duplicateMember } from '../../../src/lib/keyset/duplicate-members.js'

describe('duplicateMember', () => {
  it('property: nothing in what JSON.stringify writes, pretty or not', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.boolean(), (value, pretty) => {
        assert.equal(duplicateMember(JSON.stringify(value, null, pretty ? 2 : undefined)), undefined)
      }),
      { numRuns: 500 },
    )
  })

  it('property: a member of any object written twice (the second spelt with a \\u escape) is found', () => {
    const objectWithin = fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 4 })
    fc.assert(
      fc.property(objectWithin, fc.jsonValue({ maxDepth: 2 }), fc.nat(), (object, around, pick) => {
        const names = Object.keys(object)
        const name = names[pick % names.length]!
        // `{"<name>": …` again, first character escaped: one name to JSON.parse, another text.
        const escaped = `"${name.length > 0 ? `\\u${name.charCodeAt(0).toString(16).padStart(4, '0')}${JSON.stringify(name.slice(1)).slice(1, -1)}` : ''}"`
        const inner = JSON.stringify(object).replace(/^\{/, () => `{${escaped}: 0, `)
        const text = JSON.stringify({ around, list: [inner] }).replace(JSON.stringify(inner), () => inner)
        JSON.parse(text) // still JSON
        assert.equal(duplicateMember(text), name)
      }),
      { numRuns: 500 },
    )
  })
})
