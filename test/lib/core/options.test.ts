// createCbcJwt's options (resolveConfig): each one given in code wins over its variable, and is
// checked against its entry in the options table; a wrong one is a TypeError or RangeError
// naming it, never a value taken as it comes.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type CbcJwtOptions, resolveConfig } from '../../../src/lib/core/options.js'

const refused = (options: Record<string, unknown>, name: 'TypeError' | 'RangeError', message: RegExp) =>
  assert.throws(() => resolveConfig({ env: {}, ...options } as CbcJwtOptions), { name, message }, JSON.stringify(options))

describe('resolveConfig', () => {
  it('without env, reads process.env', () => {
    const saved = process.env.CBC_JWT_AUDIENCE
    process.env.CBC_JWT_AUDIENCE = 'audience-from-process-env'
    try {
      assert.equal(resolveConfig({}).audience, 'audience-from-process-env')
      assert.equal(resolveConfig({ env: {} }).audience, 'cbc-api', 'env: {} reads none')
    } finally {
      if (saved === undefined) delete process.env.CBC_JWT_AUDIENCE
      else process.env.CBC_JWT_AUDIENCE = saved
    }
  })

  it('each backend named in code wins over CBC_JWT_BACKEND', () => {
    for (const [backend, fromEnv] of [
      ['file', 'vault'],
      ['vault', 'kubernetes'],
      ['kubernetes', 'file'],
    ] as const) {
      assert.equal(resolveConfig({ env: { CBC_JWT_BACKEND: fromEnv }, backend }).backend, backend)
    }
  })

  it('a backend that is neither a name nor a KeysetBackend is a TypeError naming the option, never a backend guessed', () => {
    for (const backend of ['vualt', 'File', '', 42, {}, { read: 'not a function' }, null]) {
      refused(
        { backend, keysetFile: '/nonexistent/keyset.json' },
        'TypeError',
        /^createCbcJwt: backend must be 'file', 'vault', 'kubernetes' or a KeysetBackend object, got /,
      )
    }
  })

  it('a string option is a non-empty string', () => {
    for (const [name, value] of [
      ['issuer', ''],
      ['audience', ''],
      ['keysetFile', ''],
      ['audience', 5],
      ['audience', ['a', 'b']],
      ['issuer', null],
    ] as const) {
      refused({ [name]: value }, 'TypeError', new RegExp(`^createCbcJwt: ${name} must be a non-empty string$`))
    }
  })

  it('a boolean option is a boolean: the string "false" never trusts a proxy', () => {
    for (const value of ['false', 'true', 0, 1]) refused({ trustProxy: value }, 'TypeError', /^createCbcJwt: trustProxy must be a boolean$/)
    assert.equal(resolveConfig({ env: { CBC_JWT_TRUST_PROXY: 'true' }, trustProxy: false }).trustProxy, false)
  })

  it('an enum option is one of its values', () => {
    for (const value of ['loud', 'INFO', ''])
      refused({ logLevel: value }, 'RangeError', /^createCbcJwt: logLevel must be one of fatal, error, warn, info, debug, trace, silent$/)
    assert.equal(resolveConfig({ env: {}, logLevel: 'silent' }).logLevel, 'silent')
  })

  it('a number option is a number within its range, both ends included', () => {
    for (const value of ['30', Number.NaN, -1, 3600.5, Number.POSITIVE_INFINITY]) {
      refused({ clockToleranceSeconds: value }, 'RangeError', /^createCbcJwt: clockToleranceSeconds must be a number from 0 to 3600, got /)
    }
    const ends = [
      ['clockToleranceSeconds', 0, 3600],
      ['maxTokenBytes', 64, 61_440],
      ['successLogSample', 0, 1],
      ['refreshIntervalSeconds', 0.1, 86_400],
    ] as const
    for (const [name, min, max] of ends) {
      assert.equal(resolveConfig({ env: {}, [name]: min })[name], min, `${name} ${min}`)
      assert.equal(resolveConfig({ env: {}, [name]: max })[name], max, `${name} ${max}`)
    }
  })

  it("trustedIssuers may not list the keyset's own issuer, the one given in code or the environment's", () => {
    const own = 'https://cbc.example'
    const other = { issuer: 'https://idp.example', audience: 'orders-api', jwks_uri: 'https://idp.example/jwks' }
    refused(
      { issuer: own, trustedIssuers: [other, { ...other, issuer: own }] },
      'TypeError',
      /^createCbcJwt: trustedIssuers\[1\]\.issuer: is the keyset's own issuer/,
    )
    assert.throws(() => resolveConfig({ env: { CBC_JWT_ISSUER: own }, trustedIssuers: [{ ...other, issuer: own }] }), {
      name: 'TypeError',
      message: /^createCbcJwt: trustedIssuers\[0\]\.issuer: is the keyset's own issuer/,
    })
    assert.deepEqual(
      resolveConfig({ env: {}, issuer: own, trustedIssuers: [other] }).trustedIssuers.map((t) => t.issuer),
      ['https://idp.example'],
    )
  })
})
