import assert from 'node:assert/strict'
import http from 'node:http'
import { describe, it } from 'node:test'
import { createVaultBackend, vaultOptionsFromEnv } from '../../../../src/lib/backends/vault/index.js'
import { ConfigError } from '../../../../src/lib/errors.js'

const base = { VAULT_ADDR: 'https://vault.example:8200', VAULT_TOKEN: 'hvs.secret-token-value' }

function configError(env: NodeJS.ProcessEnv, message: RegExp | string): void {
  assert.throws(
    () => vaultOptionsFromEnv(env),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err))
      assert.equal(err.code, 'ERR_CONFIG')
      if (typeof message === 'string') assert.equal(err.message, message)
      else assert.match(err.message, message)
      assert.ok(!err.message.includes('hvs.secret-token-value'))
      return true
    },
  )
}

describe('vaultOptionsFromEnv', () => {
  it('applies the defaults', () => {
    assert.deepEqual(vaultOptionsFromEnv(base), {
      addr: 'https://vault.example:8200',
      token: 'hvs.secret-token-value',
      skipVerify: false,
      mount: 'secret',
      path: 'cbc/jwt-keyset',
      auth: 'token',
      k8sMount: 'kubernetes',
      k8sTokenPath: '/var/run/secrets/kubernetes.io/serviceaccount/token',
      timeoutMs: 5000,
      retries: 2,
    })
  })

  it('reads every variable', () => {
    assert.deepEqual(
      vaultOptionsFromEnv({
        VAULT_ADDR: 'https://vault.internal:8200/',
        VAULT_NAMESPACE: 'team-a',
        VAULT_CACERT: '/etc/ssl/vault-ca.pem',
        VAULT_SKIP_VERIFY: 'false',
        CBC_JWT_VAULT_MOUNT: '/kv/',
        CBC_JWT_VAULT_PATH: 'apps/cbc/jwt',
        CBC_JWT_VAULT_AUTH: 'kubernetes',
        CBC_JWT_VAULT_ROLE: 'cbc-api',
        CBC_JWT_VAULT_K8S_MOUNT: 'k8s-prod',
        CBC_JWT_VAULT_K8S_TOKEN_PATH: '/var/run/secrets/tokens/vault',
        CBC_JWT_VAULT_TIMEOUT_MS: '1500',
        CBC_JWT_VAULT_RETRIES: '0',
      }),
      {
        addr: 'https://vault.internal:8200',
        namespace: 'team-a',
        caCertFile: '/etc/ssl/vault-ca.pem',
        skipVerify: false,
        mount: 'kv',
        path: 'apps/cbc/jwt',
        auth: 'kubernetes',
        role: 'cbc-api',
        k8sMount: 'k8s-prod',
        k8sTokenPath: '/var/run/secrets/tokens/vault',
        timeoutMs: 1500,
        retries: 0,
      },
    )
  })

  it('reads VAULT_SKIP_VERIFY as the Vault CLI does', () => {
    for (const v of ['1', 'true', 'TRUE', 't']) assert.equal(vaultOptionsFromEnv({ ...base, VAULT_SKIP_VERIFY: v }).skipVerify, true, v)
    for (const v of ['0', 'false', 'F', '']) assert.equal(vaultOptionsFromEnv({ ...base, VAULT_SKIP_VERIFY: v }).skipVerify, false, v)
    configError({ ...base, VAULT_SKIP_VERIFY: 'yes' }, /^VAULT_SKIP_VERIFY must be true\/1 or false\/0, got "yes"$/)
  })

  it('requires VAULT_ADDR', () => {
    configError({ VAULT_TOKEN: 'x' }, 'VAULT_ADDR is required when CBC_JWT_BACKEND=vault')
    configError({ VAULT_ADDR: '  ', VAULT_TOKEN: 'x' }, 'VAULT_ADDR is required when CBC_JWT_BACKEND=vault')
  })

  it('rejects a VAULT_ADDR that is not an http(s) URL', () => {
    configError({ ...base, VAULT_ADDR: 'vault.example:8200' }, /^VAULT_ADDR must use http or https/)
    configError({ ...base, VAULT_ADDR: 'not a url' }, /^VAULT_ADDR must be a URL/)
    configError({ ...base, VAULT_ADDR: 'https://user:pw@vault.example' }, /^VAULT_ADDR must not carry credentials/)
  })

  it('rejects an unknown auth method, naming the variable', () => {
    configError({ ...base, CBC_JWT_VAULT_AUTH: 'approle' }, 'CBC_JWT_VAULT_AUTH must be "token" or "kubernetes", got "approle"')
  })

  it('requires CBC_JWT_VAULT_ROLE for kubernetes auth', () => {
    configError({ VAULT_ADDR: base.VAULT_ADDR, CBC_JWT_VAULT_AUTH: 'kubernetes' }, 'CBC_JWT_VAULT_ROLE is required when CBC_JWT_VAULT_AUTH=kubernetes')
  })

  it('requires VAULT_TOKEN for token auth, but not for kubernetes', () => {
    configError({ VAULT_ADDR: base.VAULT_ADDR }, 'VAULT_TOKEN is required when CBC_JWT_VAULT_AUTH=token (the default)')
    const k8s = vaultOptionsFromEnv({ VAULT_ADDR: base.VAULT_ADDR, CBC_JWT_VAULT_AUTH: 'kubernetes', CBC_JWT_VAULT_ROLE: 'r' })
    assert.equal(k8s.token, undefined)
  })

  it('rejects a token or namespace no HTTP header can carry, naming the variable (never the token)', () => {
    // Else the service starts and counts every read "unreachable" (ERR_INVALID_CHAR) forever.
    configError({ ...base, VAULT_NAMESPACE: 'team-a\nprod' }, 'VAULT_NAMESPACE holds a character an HTTP header cannot carry, got "team-a\\nprod"')
    configError({ ...base, VAULT_TOKEN: 'hvs.secret-\ntoken-value' }, 'VAULT_TOKEN holds a character an HTTP header cannot carry (a line break?)')
    assert.equal(vaultOptionsFromEnv({ ...base, VAULT_TOKEN: 'hvs.secret-token-value\n' }).token, 'hvs.secret-token-value', 'a trailing line break is trimmed')
  })

  // docs/vault.md: the same settings can be given in code. A token read from a file keeps its
  // line break (readFileSync): refused when the backend is made, as from the environment.
  it('createVaultBackend() refuses the same token or namespace given in code, never quoting the token', () => {
    const addr = 'https://vault.internal:8200'
    for (const [options, message] of [
      [{ addr, token: 'hvs.secret-token-value\n' }, 'VAULT_TOKEN holds a character an HTTP header cannot carry (a line break?)'],
      [{ addr, token: 'hvs.t', namespace: 'team-a\nprod' }, 'VAULT_NAMESPACE holds a character an HTTP header cannot carry, got "team-a\\nprod"'],
    ] as const) {
      assert.throws(
        () => createVaultBackend(options),
        (err: unknown) => err instanceof ConfigError && err.message === message,
      )
    }
  })

  it('rejects bad numbers and paths, naming the variable', () => {
    configError({ ...base, CBC_JWT_VAULT_TIMEOUT_MS: '0' }, /^CBC_JWT_VAULT_TIMEOUT_MS must be an integer from 1 to 600000, got "0"$/)
    configError({ ...base, CBC_JWT_VAULT_TIMEOUT_MS: '5s' }, /^CBC_JWT_VAULT_TIMEOUT_MS must be an integer/)
    configError({ ...base, CBC_JWT_VAULT_RETRIES: '-1' }, /^CBC_JWT_VAULT_RETRIES must be an integer from 0 to 10/)
    configError({ ...base, CBC_JWT_VAULT_RETRIES: '11' }, /^CBC_JWT_VAULT_RETRIES must be an integer from 0 to 10/)
    configError({ ...base, CBC_JWT_VAULT_PATH: 'cbc/../other' }, /^CBC_JWT_VAULT_PATH must be a path/)
    configError({ ...base, CBC_JWT_VAULT_MOUNT: '/' }, /^CBC_JWT_VAULT_MOUNT must be a path/)
    configError({ ...base, CBC_JWT_VAULT_K8S_MOUNT: 'a//b' }, /^CBC_JWT_VAULT_K8S_MOUNT must be a path/)
  })

  it('a set but empty secret path or mount is refused: the default is the private keyset, not what a template meant', () => {
    for (const name of ['CBC_JWT_VAULT_PATH', 'CBC_JWT_VAULT_MOUNT']) {
      configError({ ...base, [name]: ' ' }, new RegExp(`^${name} is set but empty: .*or unset it`))
    }
  })
})

describe('createVaultBackend options', () => {
  it('location names mount, path and namespace, never the address or the token', async () => {
    const backend = createVaultBackend(vaultOptionsFromEnv({ ...base, VAULT_NAMESPACE: 'ns1', CBC_JWT_VAULT_PATH: 'a/b' }))
    assert.equal(backend.kind, 'vault')
    assert.equal(backend.location, 'vault:secret/a/b (namespace ns1)')
    await backend.close()
  })

  it('fails with a ConfigError naming VAULT_CACERT when the bundle cannot be read', () => {
    const options = vaultOptionsFromEnv({ ...base, VAULT_CACERT: '/nonexistent/ca.pem' })
    assert.throws(() => createVaultBackend(options), { name: 'ConfigError', message: 'VAULT_CACERT: cannot read /nonexistent/ca.pem (ENOENT)' })
  })

  it('validates programmatic options too', () => {
    const options = vaultOptionsFromEnv(base)
    assert.throws(() => createVaultBackend({ ...options, retries: -1 }), { name: 'RangeError', message: /retries must be an integer ≥ 0/ })
    assert.throws(() => createVaultBackend({ ...options, auth: 'kubernetes' }), { name: 'ConfigError', message: /CBC_JWT_VAULT_ROLE is required/ })
    const { token: _token, ...noToken } = options
    assert.throws(() => createVaultBackend(noToken), { name: 'ConfigError', message: /VAULT_TOKEN is required/ })
  })

  it('warns about plain http to a remote Vault', async () => {
    const warnings: string[] = []
    const logger = { warn: (_: object, msg?: string) => void warnings.push(msg ?? ''), info: () => {} }
    const remote = createVaultBackend(vaultOptionsFromEnv({ ...base, VAULT_ADDR: 'http://vault.example:8200' }), { logger })
    const local = createVaultBackend(vaultOptionsFromEnv({ ...base, VAULT_ADDR: 'http://127.0.0.1:8200' }), { logger })
    await Promise.all([remote.close(), local.close()])
    assert.deepEqual(warnings, ['VAULT_ADDR is plain http: the Vault token crosses the network in clear'])
  })
})

describe('vaultOptionsFromEnv: what it refuses and how it reads, to the letter', () => {
  it('VAULT_SKIP_VERIFY takes every spelling of Go ParseBool, as the Vault CLI', () => {
    for (const v of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.equal(vaultOptionsFromEnv({ ...base, VAULT_SKIP_VERIFY: v }).skipVerify, true, v)
    for (const v of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.equal(vaultOptionsFromEnv({ ...base, VAULT_SKIP_VERIFY: v }).skipVerify, false, v)
    // Not ParseBool's: refused, never read as "verify" or as "skip".
    for (const v of ['yes', 'on', 'tRUE', '2']) configError({ ...base, VAULT_SKIP_VERIFY: v }, /^VAULT_SKIP_VERIFY must be true\/1 or false\/0/)
  })

  it('blanks around a value are dropped, and a blank optional value is unset', () => {
    const options = vaultOptionsFromEnv({
      ...base,
      CBC_JWT_VAULT_MOUNT: ' kv ',
      CBC_JWT_VAULT_PATH: ' apps/jwt ',
      VAULT_NAMESPACE: ' team-a ',
      CBC_JWT_VAULT_AUTH: 'kubernetes',
      CBC_JWT_VAULT_ROLE: ' cbc-api ',
      VAULT_CACERT: ' /etc/ssl/vault-ca.pem ',
    })
    assert.deepEqual(
      [options.mount, options.path, options.namespace, options.role, options.caCertFile],
      ['kv', 'apps/jwt', 'team-a', 'cbc-api', '/etc/ssl/vault-ca.pem'],
    )
    const unset = vaultOptionsFromEnv({ ...base, VAULT_NAMESPACE: ' ', VAULT_CACERT: '', CBC_JWT_VAULT_ROLE: ' ' })
    for (const key of ['namespace', 'caCertFile', 'role'] as const) assert.equal(key in unset, false, key)
  })

  it("refuses in a token or namespace exactly what Node's HTTP client refuses in a header", () => {
    const codes = [...Array.from({ length: 0x100 }, (_, i) => i), 0x100, 0x2028, 0xfeff]
    for (const code of codes) {
      const value = `team${String.fromCharCode(code)}a`
      let nodeRefuses = false
      try {
        http.validateHeaderValue('X-Vault-Namespace', value)
      } catch {
        nodeRefuses = true
      }
      let refused = false
      try {
        vaultOptionsFromEnv({ ...base, VAULT_NAMESPACE: value })
      } catch (err) {
        assert.ok(err instanceof ConfigError && /^VAULT_NAMESPACE holds a character/.test(err.message), String(err))
        refused = true
      }
      assert.equal(refused, nodeRefuses, `U+${code.toString(16).padStart(4, '0')}: Node ${nodeRefuses ? 'refuses' : 'sends'} it`)
    }
    assert.ok(codes.some((c) => c === 0x09) && codes.some((c) => c >= 0x80 && c <= 0xff), 'a tab and Latin-1 are among the cases')
  })

  it('VAULT_ADDR: only http(s), and no credentials, query or fragment', () => {
    for (const addr of ['file:///etc/vault', 'ldap://vault.example', 'ftp://vault.example'])
      configError({ ...base, VAULT_ADDR: addr }, /^VAULT_ADDR must use http or https/)
    for (const addr of ['https://user@vault.example', 'https://:pw@vault.example', 'https://vault.example:8200/?x=1', 'https://vault.example:8200/#f']) {
      configError({ ...base, VAULT_ADDR: addr }, 'VAULT_ADDR must not carry credentials, a query or a fragment')
    }
    assert.equal(vaultOptionsFromEnv({ ...base, VAULT_ADDR: 'http://127.0.0.1:8200/vault//' }).addr, 'http://127.0.0.1:8200/vault')
  })

  it('a path with a "." segment is refused like one with ".."', () => {
    for (const path of ['cbc/./jwt', './jwt', 'cbc/.']) configError({ ...base, CBC_JWT_VAULT_PATH: path }, /^CBC_JWT_VAULT_PATH must be a path like a\/b/)
    assert.equal(vaultOptionsFromEnv({ ...base, CBC_JWT_VAULT_PATH: 'cbc/.jwt/..keyset' }).path, 'cbc/.jwt/..keyset', 'dots inside a name are a name')
  })

  it('numbers are decimal digits only, and each end of the range is accepted', () => {
    for (const value of ['0x10', '1e3', '+5', '5.0', '1_000'])
      configError({ ...base, CBC_JWT_VAULT_TIMEOUT_MS: value }, /^CBC_JWT_VAULT_TIMEOUT_MS must be an integer from 1 to 600000/)
    const low = vaultOptionsFromEnv({ ...base, CBC_JWT_VAULT_TIMEOUT_MS: '1', CBC_JWT_VAULT_RETRIES: '0' })
    const high = vaultOptionsFromEnv({ ...base, CBC_JWT_VAULT_TIMEOUT_MS: '600000', CBC_JWT_VAULT_RETRIES: '10' })
    assert.deepEqual([low.timeoutMs, low.retries, high.timeoutMs, high.retries], [1, 0, 600_000, 10])
    configError({ ...base, CBC_JWT_VAULT_TIMEOUT_MS: '600001' }, /^CBC_JWT_VAULT_TIMEOUT_MS must be an integer from 1 to 600000/)
  })
})
