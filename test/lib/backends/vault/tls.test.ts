import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ConfigError } from '../../../../src/lib/errors.js'
import { selfSignedCert } from '../../../support/test-tls.js'
import { startVaultDouble, type VaultDouble } from '../../../support/vault-double.js'
import { backendError, backendFor, captureLogger, SECRET_PATH } from './fixtures.js'

const cert = selfSignedCert()
const other = cert && selfSignedCert()
const skip = cert && other ? false : 'openssl is not installed: cannot make a throwaway certificate for the TLS cases'

describe('vault backend over TLS', { skip }, () => {
  let double: VaultDouble
  before(async () => {
    double = await startVaultDouble({ tls: { cert: cert!.cert, key: cert!.key } })
    double.setSecret(SECRET_PATH, { 'jwt-keyset': '{"tls":true}' })
  })
  after(async () => {
    await double.close()
    for (const c of [cert, other]) if (c) fs.rmSync(c.dir, { recursive: true, force: true })
  })

  it('trusts the VAULT_CACERT bundle', async (t) => {
    const backend = backendFor(double, { caCertFile: cert!.certFile })
    t.after(() => backend.close())
    assert.equal((await backend.read()).text, '{"tls":true}')
  })

  // docs/vault.md: "A bad value is refused at start with one line naming the variable." A file
  // with no certificate in it trusts nothing: every read would fail as Vault unreachable.
  it('refuses a VAULT_CACERT file that holds no certificate (empty, text, a private key) at creation, naming it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-vault-ca-'))
    try {
      const broken = cert!.cert.replace(/\n[A-Za-z0-9+/]{16}/, '\n!!!!!!!!!!!!!!!!')
      for (const [name, text] of [
        ['empty.pem', ''],
        ['text.pem', 'not a certificate\n'],
        ['key.pem', cert!.key],
        ['broken.pem', broken],
        ['second-broken.pem', `${cert!.cert}\n${broken}`],
      ] as const) {
        const file = path.join(dir, name)
        fs.writeFileSync(file, text)
        assert.throws(
          () => backendFor(double, { caCertFile: file }),
          (err: Error) => err instanceof ConfigError && err.message.startsWith(`VAULT_CACERT: ${file} `) && !err.message.includes('\n'),
          name,
        )
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("trusts a bundle in OpenSSL's trusted format (BEGIN TRUSTED CERTIFICATE), as Node does", async (t) => {
    const file = path.join(cert!.dir, 'trusted.pem')
    execFileSync('openssl', ['x509', '-in', cert!.certFile, '-addtrust', 'serverAuth', '-out', file])
    assert.match(fs.readFileSync(file, 'utf8'), /^-----BEGIN TRUSTED CERTIFICATE-----/)
    const backend = backendFor(double, { caCertFile: file })
    t.after(() => backend.close())
    assert.equal((await backend.read()).text, '{"tls":true}')
  })

  it('refuses a certificate not signed by VAULT_CACERT, as unreachable, without sending the request', async (t) => {
    double.requests.length = 0
    const backend = backendFor(double, { caCertFile: other!.certFile, retries: 0 })
    t.after(() => backend.close())
    const err = await backendError(backend.read())
    assert.equal(err.reason, 'unreachable')
    assert.match(
      err.message,
      /cannot reach Vault \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|ERR_TLS_CERT_ALTNAME_INVALID)\)/,
    )
    assert.equal(double.requests.length, 0)
  })

  it('refuses a self-signed certificate with the system roots', async (t) => {
    const backend = backendFor(double, { retries: 0 })
    t.after(() => backend.close())
    assert.equal((await backendError(backend.read())).reason, 'unreachable')
  })

  it('VAULT_SKIP_VERIFY connects anyway, and says so loudly', async (t) => {
    const { logger, calls } = captureLogger()
    const backend = backendFor(double, { skipVerify: true }, { logger })
    t.after(() => backend.close())
    assert.equal((await backend.read()).text, '{"tls":true}')
    assert.equal(calls.length, 1)
    assert.equal(calls[0]!.level, 'warn')
    assert.match(calls[0]!.msg ?? '', /VAULT_SKIP_VERIFY is set: Vault's TLS certificate is NOT verified/)
  })

  // URL schemes are case-insensitive: `HTTPS://` is TLS (the client connects with it), so the
  // warnings must say what is done, not that the setting is ignored on plain http.
  it('VAULT_ADDR spelled HTTPS://: the same TLS, and the same one warning', async (t) => {
    const { logger, calls } = captureLogger()
    const backend = backendFor(double, { addr: double.addr.replace(/^https:/, 'HTTPS:'), skipVerify: true }, { logger })
    t.after(() => backend.close())
    assert.equal((await backend.read()).text, '{"tls":true}')
    assert.deepEqual(
      calls.map((c) => `${c.level} ${c.msg}`),
      ["warn VAULT_SKIP_VERIFY is set: Vault's TLS certificate is NOT verified; anyone on the path can read the token and forge the keyset"],
    )
  })
})
