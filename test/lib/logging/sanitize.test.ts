import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { printable } from '../../../src/lib/logging/sanitize.js'
import { hostileText } from '../../support/fuzz.js'

describe('printable: the one sanitiser of foreign text', () => {
  it('clean printable ASCII passes as it is; a backslash is doubled so an escape reads one way only', () => {
    assert.equal(printable('permission denied on secrets "cbc"'), 'permission denied on secrets "cbc"')
    assert.equal(printable('a\\x1b'), 'a\\\\x1b')
  })

  it('escapes ESC/CSI/OSC, C0 and C1 controls, DEL, bidi overrides, zero-width and other non-ASCII', () => {
    assert.equal(
      printable('\u001b[31mred\u001b]0;t\u0007\u009b\u007f\u202e\u200b\u00e9\ud83d\ude00'),
      '\\x1b[31mred\\x1b]0;t\\x07\\x9b\\x7f\\u202e\\u200b\\xe9\\ud83d\\ude00',
    )
  })

  it('redacts before it cuts: a secret across the bound never prints, in part or whole', () => {
    const secret = 'hvs.0123456789abcdefghij'
    for (let at = 0; at < 60; at++) {
      const out = printable(`${'x'.repeat(at)}${secret} tail`, { max: 40, secrets: [secret] })
      assert.ok(!out.includes(secret.slice(0, 8)), out)
    }
  })

  it('property: any text → printable ASCII only, at most max + 3 characters, no secret, never a split escape', () => {
    fc.assert(
      fc.property(hostileText(), fc.integer({ min: 1, max: 400 }), fc.string({ minLength: 4, maxLength: 20 }), (text, max, secret) => {
        const out = printable(`${text}${secret}${text}`, { max, secrets: [secret] })
        assert.match(out, /^[\x20-\x7e]*$/)
        assert.ok(out.length <= max + 3)
        const escaped = printable(secret, { max: 1000 })
        if (escaped.length >= 4 && !printable(text, { max: 10_000 }).includes(escaped)) assert.ok(!out.includes(escaped))
        // An escape is cut whole or not at all: the text never ends in a bare backslash run of odd length.
        const body = out.endsWith('...') ? out.slice(0, -3) : out
        assert.ok(!/(^|[^\\])(\\\\)*\\$/.test(body), out)
      }),
      { numRuns: 300 },
    )
  })
})
