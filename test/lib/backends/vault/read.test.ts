import assert from 'node:assert/strict'
import http from 'node:http'
import { describe, it } from 'node:test'
import { makeKey, makeKeyset } from '../../../support/keys.js'
import { createVaultBackend } from '../../../../src/lib/backends/vault/index.js'
import { VAULT_DEFAULTS } from '../../../../src/lib/backends/vault/options.js'
import { MAX_KEYSET_BYTES } from '../../../../src/lib/keyset/document.js'
import { createKeyring } from '../../../../src/lib/keyring/keyring.js'
import type { VaultDouble, VaultFaultKind } from '../../../support/vault-double.js'
import { waitFor } from '../../../support/wait.js'
import { backendError, backendFor, captureLogger, kvRequests, LOCATION, optionsFor, SECRET_PATH, vaultDoubleForSuite } from './fixtures.js'

const doc = makeKeyset([makeKey('ES256', 'k-read-1')])

describe('vault backend read()', () => {
  let double: VaultDouble
  vaultDoubleForSuite((d) => {
    double = d
  })

  it('returns the jwt-keyset field held as a JSON string, with metadata.version', async (t) => {
    const path = `${SECRET_PATH}-string`
    double.setSecret(path, { 'jwt-keyset': JSON.stringify(doc), other: 'x' })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    const snap = await backend.read()
    assert.equal(snap.text, JSON.stringify(doc))
    assert.equal(snap.version, '1')
    assert.equal(backend.kind, 'vault')
    assert.equal(backend.location, `vault:secret/${path}`)
    assert.deepEqual(
      kvRequests(double).map((r) => `${r.method} ${r.path}`),
      [`GET /v1/secret/data/${path}`],
    )
  })

  // CONTRACT §6: the Vault backend passable in code — `createCbcJwt({ backend:
  // createVaultBackend({ addr, token }) })`, every setting with a default left out, as its
  // documentation says (mount `secret`, path `cbc/jwt-keyset`, token auth, 5 s, 2 retries).
  it('createVaultBackend({ addr, token }) alone: every other setting takes its documented default', async (t) => {
    double.setSecret(SECRET_PATH, { 'jwt-keyset': JSON.stringify(doc) })
    const backend = createVaultBackend({ addr: double.addr, token: double.token })
    t.after(() => backend.close())
    assert.equal(backend.location, LOCATION)
    assert.equal((await backend.read()).text, JSON.stringify(doc))
    assert.deepEqual(
      kvRequests(double).map((r) => `${r.method} ${r.path}`),
      [`GET /v1/secret/data/${SECRET_PATH}`],
    )
  })

  it('accepts the field held as a JSON object and serialises it', async (t) => {
    const path = `${SECRET_PATH}-object`
    double.setSecret(path, { 'jwt-keyset': doc })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    const snap = await backend.read()
    assert.deepEqual(JSON.parse(snap.text), doc)
  })

  it('tracks the version as the secret changes', async (t) => {
    const path = `${SECRET_PATH}-versions`
    double.setSecret(path, { 'jwt-keyset': '{"a":1}' })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    assert.deepEqual(await backend.read(), { text: '{"a":1}', version: '1' })
    double.setSecret(path, { 'jwt-keyset': '{"a":2}' })
    double.setSecret(path, { 'jwt-keyset': '{"a":3}' })
    assert.deepEqual(await backend.read(), { text: '{"a":3}', version: '3' })
  })

  // `vault kv metadata delete` removes every version: the secret written again starts over at
  // version 1. A keyring that had loaded version 1 must not take the new document for the old.
  it('a keyset written again after `vault kv metadata delete` loads, though its version number repeats', async (t) => {
    const path = `${SECRET_PATH}-recreated`
    double.setSecret(path, { 'jwt-keyset': JSON.stringify(makeKeyset([makeKey('ES256', 'k-before')])) })
    const backend = backendFor(double, { path })
    const keyring = createKeyring({ backend, logger: { info: () => {}, warn: () => {}, error: () => {} } })
    t.after(() => keyring.close())
    await keyring.refresh('start')
    assert.equal(keyring.keyset()?.current.kid, 'k-before')
    double.deleteAll(path)
    assert.equal(double.setSecret(path, { 'jwt-keyset': JSON.stringify(makeKeyset([makeKey('ES256', 'k-after')])) }), 1)
    await keyring.refreshForUnknownKid()
    assert.equal(keyring.keyset()?.current.kid, 'k-after', 'the document at the repeated version 1 is loaded')
  })

  it('fails not_found naming the field when the secret has no jwt-keyset', async (t) => {
    const path = `${SECRET_PATH}-nofield`
    double.setSecret(path, { jwt_keyset: '{}' })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    const err = await backendError(backend.read())
    assert.equal(err.reason, 'not_found')
    assert.match(err.message, /no field "jwt-keyset" \(fields: jwt_keyset\)/)
    assert.ok(err.message.startsWith(`vault:secret/${path}: read`))
  })

  it('fails not_found on a 404 without retrying', async (t) => {
    const backend = backendFor(double, { path: 'does/not/exist' })
    t.after(() => backend.close())
    const err = await backendError(backend.read())
    assert.equal(err.reason, 'not_found')
    assert.match(err.message, /^vault:secret\/does\/not\/exist: read: no such secret \(HTTP 404\)$/)
    assert.equal(double.requests.length, 1)
  })

  // docs/vault.md: no token in an error message, scrubbed as a last line of defence. A 404 is
  // answered outside the failure path (it may carry a deleted version's metadata): a proxy's
  // 404 echoing the token must be scrubbed and cut like any other answer.
  it('a 404 whose errors echo the token: not_found, the token scrubbed, the message bounded', async (t) => {
    const token = 'hvs.CAESIJlWh2Vq5LZ8Jx0tA1b2c3d4e5f6g7h8i9j0kLmNoPqRsTuVwXyZ'
    const server = http.createServer((req, res) => {
      res.writeHead(404, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ errors: [`no route for ${req.headers['x-vault-token']}`, 'x'.repeat(3000)] }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => server.close())
    const backend = createVaultBackend({ addr: `http://127.0.0.1:${(server.address() as { port: number }).port}`, token, retries: 0 })
    t.after(() => backend.close())
    const err = await backendError(backend.read())
    assert.equal(err.reason, 'not_found')
    assert.match(err.message, /no such secret \(HTTP 404, no route for /)
    assert.ok(!err.message.includes(token.slice(4, 20)), err.message)
    assert.ok(err.message.length < 600, `${err.message.length} characters`)
  })

  it('a secret without jwt-keyset whose other fields have huge or control-character names: the message names them escaped and bounded', async (t) => {
    const path = `${SECRET_PATH}-odd-fields`
    double.setSecret(path, { ['f'.repeat(5000)]: 1, 'evil\u001b[2Jname': 2 })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    const err = await backendError(backend.read())
    assert.equal(err.reason, 'not_found')
    assert.match(err.message, /has no field "jwt-keyset"/)
    assert.ok(err.message.length < 600, `${err.message.length} characters`)
    assert.ok(!err.message.includes('\u001b'), err.message)
  })

  // A proxy or a KV v1 mount answers 200 with JSON of another shape: that is a bad answer, not a
  // secret without the keyset (not_found would send the operator to look at the wrong thing).
  it('a 200 whose JSON is not a KV v2 envelope is bad_response, naming what is missing', async (t) => {
    const server = http.createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"data":{"jwt-keyset":"{}"}}'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => server.close())
    const backend = createVaultBackend({ addr: `http://127.0.0.1:${(server.address() as { port: number }).port}`, token: 'hvs.test-token', retries: 0 })
    t.after(() => backend.close())
    const err = await backendError(backend.read())
    assert.equal(err.reason, 'bad_response')
    assert.match(err.message, /the answer is not a KV v2 envelope \(data\.data, data\.metadata\.version\)/)
  })

  // `vault kv put @file.json` stores the keyset as an object, which read() serialises: a value
  // nested deeper than the stack (a hostile Vault or a proxy, well under the body cap) must be
  // a failed read with its reason, the keyset in force kept, not a RangeError out of read().
  it('attack: a jwt-keyset object nested deeper than the stack is invalid_keyset; the last good keyset stays in force', async (t) => {
    let body = JSON.stringify({ data: { data: { 'jwt-keyset': doc }, metadata: { version: 1 } } })
    const server = http.createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(body))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => server.close())
    const backend = createVaultBackend({ addr: `http://127.0.0.1:${(server.address() as { port: number }).port}`, token: 'hvs.test-token', retries: 0 })
    const errors: string[] = []
    const keyring = createKeyring({ backend, logger: { info: () => {}, warn: () => {}, error: () => {} }, events: { onBackendError: (r) => errors.push(r) } })
    t.after(() => keyring.close())
    await keyring.refresh('start')
    assert.equal(keyring.keyset()?.current.kid, 'k-read-1')
    const depth = 200_000
    body = `{"data":{"data":{"jwt-keyset":${'['.repeat(depth)}${']'.repeat(depth)}},"metadata":{"version":2}}}`
    const err = await backendError(backend.read())
    assert.equal(err.reason, 'invalid_keyset')
    assert.equal(err.message, `vault:secret/${SECRET_PATH}: read: version 2 of "jwt-keyset" is nested too deep to be a keyset`)
    await keyring.refresh('interval')
    assert.deepEqual(errors, ['invalid_keyset'])
    assert.equal(keyring.keyset()?.current.kid, 'k-read-1')
  })

  it("fails not_found on an unknown mount, with Vault's error text", async (t) => {
    const backend = backendFor(double, { mount: 'kv-missing' })
    t.after(() => backend.close())
    const err = await backendError(backend.read())
    assert.equal(err.reason, 'not_found')
    assert.match(err.message, /no handler for route/)
  })

  it('fails not_found when the latest version is deleted or destroyed (Vault answers 404 with metadata)', async (t) => {
    const path = `${SECRET_PATH}-deleted`
    double.setSecret(path, { 'jwt-keyset': '{}' })
    double.setSecret(path, { 'jwt-keyset': '{}' })
    double.deleteLatest(path)
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    let err = await backendError(backend.read())
    assert.equal(err.reason, 'not_found')
    assert.match(err.message, /the latest version \(2\) is deleted/)
    double.setSecret(path, { 'jwt-keyset': '{}' })
    double.deleteLatest(path, 'secret', { destroy: true })
    err = await backendError(backend.read())
    assert.match(err.message, /the latest version \(3\) is destroyed/)
  })

  // Vault (path_data.go) deletes a version once its deletion_time has passed; with
  // `delete_version_after` every version carries a future one and is served (200) until then.
  it('reads a version whose deletion_time is still ahead (delete_version_after): Vault serves it', async (t) => {
    const path = `${SECRET_PATH}-delete-after`
    double.deleteVersionAfter(path, 3_600_000)
    double.setSecret(path, { 'jwt-keyset': '{"a":1}', other: 'x' })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    assert.deepEqual(await backend.read(), { text: '{"a":1}', version: '1' })
    // A create must see the keyset stored there, and a write keep the other fields.
    await assert.rejects(backend.write('{"b":1}', null), { name: 'CasConflictError', message: /a keyset is already stored \(version 1\)/ })
    assert.equal((await backend.write('{"b":1}', '1')).version, '2')
    assert.deepEqual(double.secret(path), { 'jwt-keyset': '{"b":1}', other: 'x' })
  })

  describe('faults', () => {
    // [fault, reason, requests the double sees with retries = 2]
    const cases: Array<[VaultFaultKind, string, number]> = [
      ['500', 'server_error', 3],
      ['sealed', 'sealed', 3],
      ['reset', 'unreachable', 3],
      ['403', 'forbidden', 1],
      ['not_json', 'bad_response', 1],
      ['redirect', 'bad_response', 1],
      ['huge', 'bad_response', 1],
    ]
    for (const [fault, reason, requests] of cases) {
      it(`${fault} → ${reason} after ${requests} request(s)`, async (t) => {
        double.setSecret(SECRET_PATH, { 'jwt-keyset': '{}' })
        await double.setFault(fault)
        // A 1 MiB limit: the huge body is refused once that much has come, under any load.
        const backend = backendFor(double, fault === 'huge' ? { maxResponseBytes: 1024 * 1024 } : {})
        t.after(() => backend.close())
        const err = await backendError(backend.read())
        assert.equal(err.reason, reason)
        assert.ok(err.message.startsWith(`${LOCATION}: read: `), err.message)
        assert.equal(kvRequests(double).length, requests)
      })
    }

    it("names the HTTP status and Vault's errors in the message", async (t) => {
      await double.setFault('sealed')
      const backend = backendFor(double, { retries: 0 })
      t.after(() => backend.close())
      const err = await backendError(backend.read())
      assert.equal(err.message, `${LOCATION}: read: HTTP 503 (Vault is sealed)`)
    })

    it('down (connection refused) → unreachable, naming the error code', async (t) => {
      await double.setFault('down')
      const backend = backendFor(double)
      t.after(() => backend.close())
      const err = await backendError(backend.read())
      assert.equal(err.reason, 'unreachable')
      assert.match(err.message, /cannot reach Vault \(ECONNREFUSED\)/)
      await double.setFault(null)
      assert.equal((await backend.read()).version, String(double.version(SECRET_PATH)))
    })

    it('slow → timeout after the request deadline', async (t) => {
      await double.setFault({ kind: 'slow', delayMs: 5000 })
      const backend = backendFor(double, { timeoutMs: 200, retries: 0 })
      t.after(() => backend.close())
      const started = Date.now()
      const err = await backendError(backend.read())
      const elapsed = Date.now() - started
      assert.equal(err.reason, 'timeout')
      assert.match(err.message, /no complete answer within 200 ms/)
      assert.ok(elapsed >= 190 && elapsed < 1000, `elapsed ${elapsed} ms`)
    })

    it('never follows a redirect', async (t) => {
      await double.setFault('redirect')
      const backend = backendFor(double, { retries: 3 })
      t.after(() => backend.close())
      const err = await backendError(backend.read())
      assert.match(err.message, /HTTP 307.*redirect not followed/)
      assert.equal(double.requests.filter((r) => r.path.startsWith('/redirected')).length, 0)
      assert.equal(double.requests.length, 1)
    })

    it('refuses a body over maxResponseBytes, declared or streamed', async (t) => {
      double.setSecret(SECRET_PATH, { 'jwt-keyset': 'x'.repeat(500) })
      const small = backendFor(double, { maxResponseBytes: 400 })
      t.after(() => small.close())
      const declared = await backendError(small.read())
      assert.equal(declared.reason, 'bad_response')
      assert.match(declared.message, /exceeds 400/)
      const normal = backendFor(double)
      t.after(() => normal.close())
      assert.equal((await normal.read()).text.length, 500)
      await double.setFault('huge')
      const capped = backendFor(double, { maxResponseBytes: 1024 * 1024 })
      t.after(() => capped.close())
      const streamed = await backendError(capped.read())
      assert.equal(streamed.reason, 'bad_response')
      assert.match(streamed.message, /body exceeds 1048576 bytes/)
      // The default holds the largest keyset, JSON-escaped inside Vault's answer.
      assert.equal(VAULT_DEFAULTS.maxResponseBytes, 2 * MAX_KEYSET_BYTES)
    })
  })

  describe('retries', () => {
    it('are bounded by the retries option', async (t) => {
      await double.setFault('500')
      for (const retries of [0, 1, 4]) {
        double.requests.length = 0
        const backend = backendFor(double, { retries })
        t.after(() => backend.close())
        assert.equal((await backendError(backend.read())).reason, 'server_error')
        assert.equal(double.requests.length, retries + 1, `retries=${retries}`)
      }
    })

    it('recover within one read when the fault passes', async (t) => {
      double.setSecret(SECRET_PATH, { 'jwt-keyset': '{"ok":true}' })
      await double.setFault({ kind: 'sealed', times: 2 })
      const { logger, calls } = captureLogger()
      const backend = backendFor(double, {}, { logger })
      t.after(() => backend.close())
      assert.equal((await backend.read()).text, '{"ok":true}')
      assert.equal(double.requests.length, 3)
      assert.deepEqual(
        calls.map((c) => [c.level, (c.obj as { reason?: string }).reason, (c.obj as { attempt?: number }).attempt]),
        [
          ['warn', 'sealed', 1],
          ['warn', 'sealed', 2],
        ],
      )
    })

    it('back off exponentially with jitter, capped', async (t) => {
      await double.setFault('500')
      const { logger, calls } = captureLogger()
      // random() = 1 ⇒ the full window: base·2ⁿ⁻¹, capped at retryMaxDelayMs.
      const backend = backendFor(double, { retries: 3, retryBaseMs: 60, retryMaxDelayMs: 150 }, { logger, random: () => 0.999999 })
      t.after(() => backend.close())
      await backendError(backend.read())
      const delays = calls.map((c) => (c.obj as { retry_in_ms: number }).retry_in_ms)
      assert.deepEqual(delays, [59, 119, 149])
      const at = double.requests.map((r) => r.at)
      const gaps = at.slice(1).map((x, i) => x - at[i]!)
      assert.equal(gaps.length, 3)
      for (const [i, gap] of gaps.entries()) assert.ok(gap >= delays[i]! - 5, `gap ${i}: ${gap} ms < ${delays[i]} ms`)
    })

    it("left unset, the backoff is docs/vault.md's: base 100 ms, doubling, capped at 2 s", async (t) => {
      await double.setFault('500')
      const { logger, calls } = captureLogger()
      const { retryBaseMs: _base, retryMaxDelayMs: _cap, ...options } = optionsFor(double, { retries: 6 })
      // random() = 1/64 (exact in binary): each logged delay is the window / 64, and the six waits take ~80 ms.
      const backend = createVaultBackend(options, { logger, random: () => 1 / 64 })
      t.after(() => backend.close())
      await backendError(backend.read())
      const delays = calls.map((c) => (c.obj as { retry_in_ms: number }).retry_in_ms)
      // Windows 100, 200, 400, 800, 1600, then 2000 (not 3200).
      assert.deepEqual(delays, [1, 3, 6, 12, 25, 31])
    })

    it('with no jitter left, still retry at once', async (t) => {
      await double.setFault('500')
      const backend = backendFor(double, { retries: 2, retryBaseMs: 1000 }, { random: () => 0 })
      t.after(() => backend.close())
      const started = Date.now()
      await backendError(backend.read())
      assert.equal(double.requests.length, 3)
      assert.ok(Date.now() - started < 500)
    })
  })

  describe('close()', () => {
    it('aborts an in-flight request and later reads fail io_error', async () => {
      await double.setFault({ kind: 'slow', delayMs: 5000 })
      const backend = backendFor(double, { timeoutMs: 4000 })
      const pending = backendError(backend.read())
      await waitFor(() => double.requests.length === 1, { intervalMs: 5, what: 'the request to reach the double' })
      const started = Date.now()
      await backend.close()
      const err = await pending
      assert.equal(err.reason, 'io_error')
      assert.match(err.message, /backend closed/)
      assert.ok(Date.now() - started < 1000)
      assert.equal((await backendError(backend.read())).reason, 'io_error')
      await backend.close() // twice is fine
    })

    it('interrupts a backoff wait', async () => {
      await double.setFault('500')
      const backend = backendFor(double, { retries: 3, retryBaseMs: 5000, retryMaxDelayMs: 5000 }, { random: () => 0.9 })
      const pending = backendError(backend.read())
      // Closed once the first attempt has been answered: during the 5 s backoff, or just before it.
      await waitFor(() => double.requests.length === 1, { intervalMs: 5, what: 'the first attempt' })
      const started = Date.now()
      await backend.close()
      assert.equal((await pending).reason, 'io_error')
      assert.ok(Date.now() - started < 1000)
      assert.equal(double.requests.length, 1)
    })
  })
})
