import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { cbcJwtConfigFromEnv, DEFAULTS, serviceConfigFromEnv } from '../../src/lib/config.js'
import { ConfigError } from '../../src/lib/errors.js'
import { OPTIONS, type OptionSpec, serviceVariables } from '../../src/lib/options-table.js'

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

/**
 * The range of every number the service and the library read, written out here rather than read
 * from the options table: a bound loosened in the table (a clock leeway of days, a token cache
 * without a cap, a request timeout of hours) fails here. [min, max, integer]; no max: unbounded.
 */
const RANGES: Record<string, [number, number | undefined, boolean]> = {
  PORT: [0, 65_535, true],
  CBC_JWT_REFRESH_INTERVAL_SECONDS: [0.1, 86_400, false],
  CBC_JWT_UNKNOWN_KID_COOLDOWN_SECONDS: [0, undefined, false],
  CBC_JWT_CLOCK_TOLERANCE_SECONDS: [0, 3600, false],
  CBC_JWT_MAX_TOKEN_BYTES: [64, 61_440, true],
  CBC_JWT_TOKEN_CACHE_ENTRIES: [0, 10_000_000, true],
  CBC_JWT_TOKEN_CACHE_MAX_BYTES: [1024, 4 * 1024 ** 3, true],
  CBC_JWT_HTTP_REQUEST_TIMEOUT_SECONDS: [0.1, 3600, false],
  CBC_JWT_HTTP_MAX_CONNECTIONS: [1, 1_000_000, true],
  CBC_JWT_SUCCESS_LOG_SAMPLE: [0, 1, false],
}

describe('the range of every number read from the environment', () => {
  const specs = (Object.values(OPTIONS) as OptionSpec[]).filter((s) => s.scope === 'library' || s.scope === 'service')
  const numbers = specs.filter((s) => s.type === 'integer' || s.type === 'number').map((s) => s.env)

  it('every number option of the service and the library has its range written out here', () => {
    assert.deepEqual(numbers.sort(), Object.keys(RANGES).sort())
  })

  for (const [variable, [min, max, integer]] of Object.entries(RANGES)) {
    it(`${variable}: from ${min} to ${max ?? 'any'}${integer ? ', whole' : ''}, both ends included`, () => {
      const name = Object.entries(OPTIONS).find(([, s]) => s.env === variable)![0]
      const read = (value: string) => (serviceConfigFromEnv({ [variable]: value }) as unknown as Record<string, number>)[name]
      const outside = (value: string) => assert.throws(() => serviceConfigFromEnv({ [variable]: value }), ConfigError, `${variable}=${value}`)
      assert.equal(read(String(min)), min)
      outside(String(min - (integer ? 1 : 0.05)))
      if (max !== undefined) {
        assert.equal(read(String(max)), max)
        outside(String(max + (integer ? 1 : 0.05)))
      } else {
        assert.equal(read('1000000000'), 1_000_000_000)
      }
      // A fraction within the range: refused for a whole number, read as it is otherwise.
      const fraction = min + 0.5
      if (integer) assert.throws(() => serviceConfigFromEnv({ [variable]: String(fraction) }), /must be an integer/)
      else assert.equal(read(String(fraction)), fraction)
    })
  }
})

describe('who reads what: the library never reads the listen settings or the development keyset', () => {
  const LIBRARY = [
    'backend',
    'keysetFile',
    'refreshIntervalSeconds',
    'unknownKidCooldownSeconds',
    'issuer',
    'audience',
    'clockToleranceSeconds',
    'maxTokenBytes',
    'maxTokenTtlSeconds',
    'tokenCacheEntries',
    'tokenCacheMaxBytes',
    'trustedIssuers',
    'logLevel',
    'trustProxy',
    'successLogSample',
  ]
  const SERVICE_ONLY = ['port', 'host', 'devKeyset', 'httpRequestTimeoutSeconds', 'httpMaxConnections']

  it("the library's configuration is exactly its options", () => {
    assert.deepEqual(Object.keys(cbcJwtConfigFromEnv({})).sort(), [...LIBRARY].sort())
  })

  it("the service's is the library's and its own", () => {
    assert.deepEqual(Object.keys(serviceConfigFromEnv({})).sort(), [...LIBRARY, ...SERVICE_ONLY].sort())
  })

  it("serviceVariables, what the deploy tests hold a manifest's env to: the service's, the library's and both backends', never the CLI's", () => {
    const read = serviceVariables()
    for (const name of [
      'PORT',
      'CBC_JWT_DEV_KEYSET',
      'CBC_JWT_KEYSET_FILE',
      'VAULT_ADDR',
      'CBC_JWT_VAULT_PATH',
      'CBC_JWT_KUBERNETES_NAMESPACE',
      'CBC_JWT_KUBERNETES_SECRET',
    ]) {
      assert.ok(read.includes(name), name)
    }
    // Set on the service, these would do nothing: a manifest naming one is a mistake to catch.
    for (const name of [
      'CBC_JWT_PUBLIC_KEYSET_FILE',
      'CBC_JWT_KUBERNETES_PUBLIC_SECRET',
      'CBC_JWT_KUBERNETES_LAST_GOOD_SECRET',
      'CBC_JWT_PROMETHEUS_URL',
      'CBC_JWT_NOW',
    ]) {
      assert.ok(!read.includes(name), name)
    }
  })

  it('a bad service-only variable does not stop the library', () => {
    const env = { PORT: 'x', HOST: '', CBC_JWT_DEV_KEYSET: 'maybe', CBC_JWT_HTTP_REQUEST_TIMEOUT_SECONDS: '-1', CBC_JWT_HTTP_MAX_CONNECTIONS: '0' }
    assert.doesNotThrow(() => cbcJwtConfigFromEnv(env))
    for (const [name, value] of Object.entries(env)) {
      if (name === 'HOST') continue // an empty HOST is unset
      assert.throws(() => serviceConfigFromEnv({ [name]: value }), ConfigError, name)
    }
  })
})
