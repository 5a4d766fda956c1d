// CBC_JWT_TRUSTED_ISSUERS and the `trustedIssuers` option: checked once, failing closed with one
// line naming the variable (or the option) and the field.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { cbcJwtConfigFromEnv } from '../../../src/lib/config.js'
import { createCbcJwt } from '../../../src/lib/core/compose.js'
import { ERROR_CODES } from '../../../src/lib/errors.js'

const env = (value: unknown, extra: Record<string, string> = {}) => ({
  CBC_JWT_TRUSTED_ISSUERS: typeof value === 'string' ? value : JSON.stringify(value),
  ...extra,
})
const idp = { issuer: 'https://idp.example.com/realms/acme', audience: 'orders-api' }

describe('CBC_JWT_TRUSTED_ISSUERS', () => {
  it('fills in the defaults', () => {
    const [settings] = cbcJwtConfigFromEnv(env([idp])).trustedIssuers
    assert.deepEqual(
      { ...settings, algorithms: settings!.algorithms.length },
      {
        issuer: idp.issuer,
        audiences: ['orders-api'],
        jwksUri: undefined,
        algorithms: 10,
        allowMissingIat: false,
        scopeClaim: undefined,
        clockToleranceSeconds: undefined,
        maxTokenTtlSeconds: undefined,
        refreshIntervalSeconds: 300,
        unknownKidCooldownSeconds: 30,
      },
    )
    assert.deepEqual(cbcJwtConfigFromEnv({}).trustedIssuers, [])
    assert.deepEqual(cbcJwtConfigFromEnv(env('')).trustedIssuers, [])
  })

  const refusals: Array<[string, unknown, RegExp]> = [
    ['not JSON', '[{', /^CBC_JWT_TRUSTED_ISSUERS must be a JSON array/],
    ['not an array', idp, /^CBC_JWT_TRUSTED_ISSUERS: must be a JSON array/],
    ['a typo', [{ ...idp, audiance: 'x' }], /^CBC_JWT_TRUSTED_ISSUERS\[0\]\.audiance: unknown field/],
    // The one exception named, so an operator with a provider beside the service knows it is allowed.
    [
      'plain HTTP issuer',
      [{ ...idp, issuer: 'http://idp.example.com' }],
      /^CBC_JWT_TRUSTED_ISSUERS\[0\]\.issuer: must be an https URL \(keys read over plain HTTP could be replaced on the way; http only to localhost, 127\.0\.0\.0\/8 or \[::1\]\)$/,
    ],
    ['issuer with a query', [{ ...idp, issuer: 'https://idp.example.com/?tenant=1' }], /\[0\]\.issuer: must have no query or fragment/],
    ['plain HTTP jwks_uri', [{ ...idp, jwks_uri: 'http://idp.example.com/jwks' }], /\[0\]\.jwks_uri: must be an https URL/],
    // Plain http only to this host's loopback: not to a name that merely starts like it.
    ['plain HTTP to a host named like loopback', [{ ...idp, issuer: 'http://localhost.evil.example' }], /\[0\]\.issuer: must be an https URL/],
    ['plain HTTP to 127.0.0.1 as a subdomain', [{ ...idp, issuer: 'http://127.0.0.1.evil.example' }], /\[0\]\.issuer: must be an https URL/],
    ['plain HTTP to every address', [{ ...idp, jwks_uri: 'http://0.0.0.0:8080/jwks' }], /\[0\]\.jwks_uri: must be an https URL/],
    ['plain HTTP to an IPv6 address not loopback', [{ ...idp, jwks_uri: 'http://[::2]/jwks' }], /\[0\]\.jwks_uri: must be an https URL/],
    // The URL parser drops these, but a token's iss is compared with the text as written: no token
    // would ever match, and discovery would refuse every document, all without a word at start.
    ['an issuer with a leading space', [{ ...idp, issuer: ' https://idp.example.com' }], /\[0\]\.issuer: must be an https URL/],
    ['an issuer with a line break', [{ ...idp, issuer: 'https://idp.exam\nple.com' }], /\[0\]\.issuer: must be an https URL/],
    ['a jwks_uri with a tab', [{ ...idp, jwks_uri: 'https://idp.example.com/\tjwks' }], /\[0\]\.jwks_uri: must be an https URL/],
    ['an unknown field whose name holds a line break', [{ ...idp, 'scope\nclaim\u001b[2J': 'scp' }], /\[0\]\.scope\\x0aclaim\\x1b\[2J: unknown field/],
    ['no audience', [{ issuer: idp.issuer }], /\[0\]\.audience: is required/],
    ['empty audience list', [{ ...idp, audience: [] }], /\[0\]\.audience: is required/],
    ['an HMAC algorithm', [{ ...idp, algorithms: ['HS256'] }], /\[0\]\.algorithms: must hold only RS256.*no HMAC/],
    ['an unknown algorithm', [{ ...idp, algorithms: ['none'] }], /\[0\]\.algorithms: must hold only/],
    ['a scope claim that is no name', [{ ...idp, scope_claim: 'a b' }], /\[0\]\.scope_claim: must be a claim name/],
    ['a negative tolerance', [{ ...idp, clock_tolerance_seconds: -1 }], /\[0\]\.clock_tolerance_seconds: must be a number of seconds/],
    ['twice the same issuer', [idp, idp], /\[1\]\.issuer: is listed twice/],
    ["the keyset's own issuer", [{ ...idp, issuer: 'https://cbc.example.com' }], /\[0\]\.issuer: is the keyset's own issuer/],
  ]
  it("accepts plain http to this host's loopback (a sidecar or a test identity provider), as written", () => {
    for (const issuer of ['http://localhost:9000', 'http://127.0.0.1:9000/realms/acme', 'http://127.1.2.3', 'http://[::1]:9000']) {
      const [settings] = cbcJwtConfigFromEnv(env([{ issuer, audience: 'orders-api', jwks_uri: `${issuer}/jwks` }])).trustedIssuers
      assert.deepEqual([settings?.issuer, settings?.jwksUri], [issuer, `${issuer}/jwks`])
    }
  })

  for (const [what, value, message] of refusals) {
    it(`refuses ${what} with one line naming the field`, () => {
      assert.throws(
        () => cbcJwtConfigFromEnv(env(value, { CBC_JWT_ISSUER: 'https://cbc.example.com' })),
        (err: Error & { code?: string }) => err.code === ERROR_CODES.CONFIG && message.test(err.message) && !err.message.includes('\n'),
      )
    })
  }
})

describe('the trustedIssuers option', () => {
  it('is checked like the variable, naming the option', () => {
    assert.throws(() => createCbcJwt({ env: {}, keysetFile: '/nonexistent', trustedIssuers: [{ ...idp, jwks_uri: 'ftp://x' }] }), {
      name: 'TypeError',
      message: /^createCbcJwt: trustedIssuers\[0\]\.jwks_uri: must be an https URL/,
    })
  })

  it("wins over the variable, and may not list the issuer option's value", () => {
    const cbc = createCbcJwt({ env: env([idp]), keysetFile: '/nonexistent', trustedIssuers: [] })
    assert.deepEqual(cbc.config.trustedIssuers, [])
    assert.throws(() => createCbcJwt({ env: env([idp]), keysetFile: '/nonexistent', issuer: idp.issuer }), {
      code: ERROR_CODES.CONFIG,
      message: /lists https:\/\/idp\.example\.com\/realms\/acme, the keyset's own issuer/,
    })
  })
})
