import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DEFAULTS, serviceConfigFromEnv } from '../../src/lib/config.js'
import { ConfigError } from '../../src/lib/errors.js'

describe('serviceConfigFromEnv', () => {
  it('uses the contract defaults with an empty environment', () => {
    const config = serviceConfigFromEnv({})
    assert.deepEqual(config, { ...DEFAULTS, keysetFile: undefined })
    assert.equal(config.port, 8000)
    assert.equal(config.issuer, 'cbc-omega2')
    assert.equal(config.audience, 'cbc-api')
  })

  it('a blank variable is an empty one: never a clock tolerance of 0 or port 0 read from " "', () => {
    const config = serviceConfigFromEnv({ CBC_JWT_CLOCK_TOLERANCE_SECONDS: ' ', PORT: ' ' })
    assert.deepEqual([config.clockToleranceSeconds, config.port], [30, 8000])
  })

  it('an empty or blank issuer or audience is refused: the default would accept tokens meant for another API', () => {
    for (const [name, value] of [
      ['CBC_JWT_ISSUER', ''],
      ['CBC_JWT_AUDIENCE', ' '],
    ]) {
      assert.throws(() => serviceConfigFromEnv({ [name!]: value }), new RegExp(`^ConfigError: ${name} is set but empty: .*or unset it`))
    }
  })

  it('numbers are decimal: 0x1F90 is not port 8080, 1e3 not 1000', () => {
    for (const value of ['0x1F90', '1e3', '0b1', 'Infinity']) {
      assert.throws(() => serviceConfigFromEnv({ PORT: value }), /^ConfigError: PORT must be a number between/)
    }
    assert.equal(serviceConfigFromEnv({ PORT: ' 8080 ' }).port, 8080)
    assert.equal(serviceConfigFromEnv({ CBC_JWT_CLOCK_TOLERANCE_SECONDS: '2.5' }).clockToleranceSeconds, 2.5)
  })

  it('an empty CBC_JWT_KEYSET_FILE or CBC_JWT_DEV_KEYSET is a configuration error naming the variable, not "unset"', () => {
    assert.throws(
      () => serviceConfigFromEnv({ CBC_JWT_KEYSET_FILE: '' }),
      (err: ConfigError) => {
        assert.equal(err.code, 'ERR_CONFIG')
        assert.match(err.message, /^CBC_JWT_KEYSET_FILE is set but empty: set it to the keyset path/)
        return true
      },
    )
    assert.throws(() => serviceConfigFromEnv({ CBC_JWT_DEV_KEYSET: '' }), /^ConfigError: CBC_JWT_DEV_KEYSET is set but empty/)
    assert.equal(serviceConfigFromEnv({ CBC_JWT_DEV_KEYSET: 'true' }).devKeyset, true)
  })

  it('reads every variable of CONTRACT §2', () => {
    const config = serviceConfigFromEnv({
      PORT: '9000',
      HOST: '127.0.0.1',
      CBC_JWT_BACKEND: 'vault',
      CBC_JWT_KEYSET_FILE: '/var/run/secrets/cbc-jwt/jwt-keyset',
      CBC_JWT_REFRESH_INTERVAL_SECONDS: '5',
      CBC_JWT_ISSUER: 'iss-x',
      CBC_JWT_AUDIENCE: 'aud-x',
      CBC_JWT_CLOCK_TOLERANCE_SECONDS: '0',
      CBC_JWT_MAX_TOKEN_BYTES: '4096',
      CBC_JWT_TOKEN_CACHE_ENTRIES: '0',
      CBC_JWT_TOKEN_CACHE_MAX_BYTES: '1048576',
    })
    assert.equal(config.port, 9000)
    assert.equal(config.host, '127.0.0.1')
    assert.equal(config.backend, 'vault')
    assert.equal(config.keysetFile, '/var/run/secrets/cbc-jwt/jwt-keyset')
    assert.equal(config.refreshIntervalSeconds, 5)
    assert.equal(config.issuer, 'iss-x')
    assert.equal(config.audience, 'aud-x')
    assert.equal(config.clockToleranceSeconds, 0)
    assert.equal(config.maxTokenBytes, 4096)
    assert.equal(config.tokenCacheEntries, 0)
    assert.equal(config.tokenCacheMaxBytes, 1048576)
  })

  it('a boolean is true, false, 1 or 0: anything else is refused, never read as true or as false', () => {
    for (const [value, expected] of [
      ['true', true],
      ['1', true],
      ['false', false],
      ['0', false],
    ] as const) {
      assert.equal(serviceConfigFromEnv({ CBC_JWT_DEV_KEYSET: value }).devKeyset, expected, value)
    }
    for (const value of ['yes', 'FALSE', 'off']) {
      assert.throws(
        () => serviceConfigFromEnv({ CBC_JWT_DEV_KEYSET: value }),
        new RegExp(`^ConfigError: CBC_JWT_DEV_KEYSET must be true or false \\(got "${value}"\\)$`),
      )
    }
  })

  it('a value exactly at the end of its range is accepted', () => {
    assert.equal(serviceConfigFromEnv({ PORT: '65535' }).port, 65535)
    assert.equal(serviceConfigFromEnv({ CBC_JWT_CLOCK_TOLERANCE_SECONDS: '3600' }).clockToleranceSeconds, 3600)
    assert.throws(
      () => serviceConfigFromEnv({ CBC_JWT_CLOCK_TOLERANCE_SECONDS: '3600.5' }),
      /^ConfigError: CBC_JWT_CLOCK_TOLERANCE_SECONDS must be a number between 0 and 3600/,
    )
    // Decimals with any number of digits, with or without a leading 0.
    assert.equal(serviceConfigFromEnv({ CBC_JWT_CLOCK_TOLERANCE_SECONDS: '2.25' }).clockToleranceSeconds, 2.25)
    assert.equal(serviceConfigFromEnv({ CBC_JWT_CLOCK_TOLERANCE_SECONDS: '.25' }).clockToleranceSeconds, 0.25)
  })

  it('CBC_JWT_MAX_TOKEN_TTL is a duration or bare seconds, from 1 s to 36525d', () => {
    for (const [value, seconds] of [
      ['90m', 5400],
      ['3600', 3600],
      [' 3600 ', 3600],
      [' 2h ', 7200],
      ['1s', 1],
      ['1', 1],
      ['36525d', 36525 * 86400],
    ] as const) {
      assert.equal(serviceConfigFromEnv({ CBC_JWT_MAX_TOKEN_TTL: value }).maxTokenTtlSeconds, seconds, value)
    }
    // Below a second, or no duration at all (digits after a unit are not bare seconds).
    for (const value of ['0', '500ms', '0.5', '1h30', '24 h']) {
      assert.throws(
        () => serviceConfigFromEnv({ CBC_JWT_MAX_TOKEN_TTL: value }),
        new RegExp(`^ConfigError: CBC_JWT_MAX_TOKEN_TTL must be a duration like 24h or a number of seconds \\(got "${value}"\\)$`),
        value,
      )
    }
    assert.throws(() => serviceConfigFromEnv({ CBC_JWT_MAX_TOKEN_TTL: '36525d1s' }), /^ConfigError: CBC_JWT_MAX_TOKEN_TTL must be at most 36525d/)
  })

  it('turns the verified-token cache on by default (CONTRACT §8: 10000 entries)', () => {
    assert.equal(serviceConfigFromEnv({}).tokenCacheEntries, 10_000)
    assert.equal(serviceConfigFromEnv({}).tokenCacheMaxBytes, 16 * 1024 * 1024)
  })

  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /^PORT must be a number/],
    [{ PORT: '70000' }, /^PORT must be a number between 0 and 65535/],
    [{ PORT: '80.5' }, /^PORT must be an integer/],
    [{ CBC_JWT_BACKEND: 'consul' }, /^CBC_JWT_BACKEND must be "file", "vault" or "kubernetes" \(got "consul"\)/],
    [{ CBC_JWT_REFRESH_INTERVAL_SECONDS: '0' }, /^CBC_JWT_REFRESH_INTERVAL_SECONDS must be a number/],
    // Past what a timer holds (2^31 ms), Node fires the interval every millisecond instead.
    [{ CBC_JWT_REFRESH_INTERVAL_SECONDS: '3000000' }, /^CBC_JWT_REFRESH_INTERVAL_SECONDS must be a number between 0.1 and 86400/],
    [{ CBC_JWT_CLOCK_TOLERANCE_SECONDS: '-1' }, /^CBC_JWT_CLOCK_TOLERANCE_SECONDS must be a number/],
    // A leeway of a billion seconds would accept every expired token: an hour is the bound, as for a trusted issuer.
    [{ CBC_JWT_CLOCK_TOLERANCE_SECONDS: '1e9' }, /^CBC_JWT_CLOCK_TOLERANCE_SECONDS must be a number between 0 and 3600/],
    [{ CBC_JWT_MAX_TOKEN_BYTES: '100000' }, /^CBC_JWT_MAX_TOKEN_BYTES must be a number between 64 and 61440/],
    [{ CBC_JWT_TOKEN_CACHE_ENTRIES: '-1' }, /^CBC_JWT_TOKEN_CACHE_ENTRIES must be a number/],
    [{ CBC_JWT_TOKEN_CACHE_ENTRIES: '1e3.5' }, /^CBC_JWT_TOKEN_CACHE_ENTRIES must be a number/],
    [{ CBC_JWT_TOKEN_CACHE_MAX_BYTES: '100' }, /^CBC_JWT_TOKEN_CACHE_MAX_BYTES must be a number between 1024/],
    // Added to now as the rotation grace it would leave the range of a date (rotate crashed).
    [{ CBC_JWT_MAX_TOKEN_TTL: '1000000000w' }, /^CBC_JWT_MAX_TOKEN_TTL must be at most 36525d \(got "1000000000w"\)$/],
    [{ CBC_JWT_MAX_TOKEN_TTL: '99999999999999999999' }, /^CBC_JWT_MAX_TOKEN_TTL must be at most 36525d/],
    [{ CBC_JWT_LOG_LEVEL: 'loud' }, /^CBC_JWT_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent \(got "loud"\)$/],
  ]
  for (const [env, message] of bad) {
    it(`refuses ${JSON.stringify(env)} with a ConfigError naming the variable`, () => {
      assert.throws(
        () => serviceConfigFromEnv(env),
        (err: unknown) => err instanceof ConfigError && err.code === 'ERR_CONFIG' && message.test(err.message),
      )
    })
  }
})
