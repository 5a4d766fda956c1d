import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { beforeEach, describe, it } from 'node:test'
import { createVaultBackend } from '../../../../src/lib/backends/vault/index.js'
import { CasConflictError } from '../../../../src/lib/errors.js'
import type { VaultDouble } from '../../../support/vault-double.js'
import { waitFor } from '../../../support/wait.js'
import { backendError, backendFor, kvRequests, vaultDoubleForSuite } from './fixtures.js'

describe('vault backend write()', () => {
  let double: VaultDouble
  let n = 0
  let path: string
  vaultDoubleForSuite((d) => {
    double = d
  })
  beforeEach(() => {
    path = `cbc/write-${++n}`
  })

  it('check-and-set write bumps the version and stores the text', async (t) => {
    double.setSecret(path, { 'jwt-keyset': '{"v":1}' })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    const snap = await backend.write('{"v":2}', '1')
    assert.deepEqual(snap, { text: '{"v":2}', version: '2' })
    assert.equal(double.version(path), 2)
    assert.deepEqual(double.secret(path), { 'jwt-keyset': '{"v":2}' })
    const post = kvRequests(double, 'POST')
    assert.equal(post.length, 1)
    assert.deepEqual(post[0]!.body, { options: { cas: 1 }, data: { 'jwt-keyset': '{"v":2}' } })
    assert.deepEqual(await backend.read(), snap)
  })

  it('preserves the other fields of the secret', async (t) => {
    double.setSecret(path, { 'jwt-keyset': '{}', 'db-password': 'p', nested: { a: [1, 2] } })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    await backend.write('{"new":true}', '1')
    assert.deepEqual(double.secret(path), { 'jwt-keyset': '{"new":true}', 'db-password': 'p', nested: { a: [1, 2] } })
  })

  it('fails with CasConflictError when the secret moved past expectedVersion, writing nothing', async (t) => {
    double.setSecret(path, { 'jwt-keyset': '{"v":1}' })
    double.setSecret(path, { 'jwt-keyset': '{"v":2}' })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    await assert.rejects(backend.write('{"v":3}', '1'), (err: unknown) => {
      assert.ok(err instanceof CasConflictError)
      assert.equal(err.code, 'ERR_CAS_CONFLICT')
      assert.match(err.message, new RegExp(`^vault:secret/${path}: write: expected version 1, Vault holds version 2$`))
      return true
    })
    assert.equal(double.version(path), 2)
    assert.equal(kvRequests(double, 'POST').length, 0)
  })

  it("maps Vault's check-and-set 400 to CasConflictError when another writer lands between read and write", async (t) => {
    double.setSecret(path, { 'jwt-keyset': '{"v":1}' })
    // Hold the POST at the double while another writer commits version 2 (within the 5 s timeout).
    await double.setFault({ kind: 'slow', method: 'POST', delayMs: 600, times: 1 })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    const pending = backend.write('{"mine":true}', '1')
    // Not a fixed sleep: the POST must have arrived (and be held) before the other writer lands.
    await waitFor(() => kvRequests(double, 'POST').length > 0, { intervalMs: 5, what: 'the held POST' })
    double.setSecret(path, { 'jwt-keyset': '{"theirs":true}' })
    await assert.rejects(pending, (err: unknown) => {
      assert.ok(err instanceof CasConflictError)
      assert.match(err.message, /version 1 is no longer current \(check-and-set\)/)
      return true
    })
    assert.deepEqual(double.secret(path), { 'jwt-keyset': '{"theirs":true}' })
    assert.equal(double.version(path), 2)
  })

  it('two concurrent writers with the same expectedVersion: exactly one wins', async (t) => {
    double.setSecret(path, { 'jwt-keyset': '{"v":1}' })
    const a = backendFor(double, { path })
    const b = backendFor(double, { path })
    t.after(() => Promise.all([a.close(), b.close()]))
    const results = await Promise.allSettled([a.write('{"w":"a"}', '1'), b.write('{"w":"b"}', '1')])
    const won = results.filter((r) => r.status === 'fulfilled')
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    assert.equal(won.length, 1)
    assert.equal(lost.length, 1)
    assert.ok(lost[0]!.reason instanceof CasConflictError, String(lost[0]!.reason))
    assert.equal(double.version(path), 2)
    const winner = (won[0] as PromiseFulfilledResult<{ text: string }>).value.text
    assert.deepEqual(double.secret(path), { 'jwt-keyset': winner })
  })

  it('without expectedVersion creates a missing secret with cas 0', async (t) => {
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    assert.deepEqual(await backend.write('{"first":1}'), { text: '{"first":1}', version: '1' })
    assert.deepEqual(kvRequests(double, 'POST')[0]!.body, { options: { cas: 0 }, data: { 'jwt-keyset': '{"first":1}' } })
  })

  // read() takes a jwt-keyset holding null (`vault kv put @file.json`) for no keyset: a create
  // must agree, not refuse as if one were stored.
  it('a create over a jwt-keyset field holding null writes it, keeping the other fields', async (t) => {
    double.setSecret(path, { 'jwt-keyset': null, other: 'keep' })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    assert.equal((await backendError(backend.read())).reason, 'not_found')
    assert.deepEqual(await backend.write('{"first":1}', null), { text: '{"first":1}', version: '2' })
    assert.deepEqual(double.secret(path), { 'jwt-keyset': '{"first":1}', other: 'keep' })
  })

  it('with expectedVersion "0" refuses to overwrite an existing secret', async (t) => {
    double.setSecret(path, { 'jwt-keyset': '{}' })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    await assert.rejects(backend.write('{}', '0'), CasConflictError)
  })

  it("without expectedVersion retries a lost merge race instead of dropping the other writer's fields", async (t) => {
    double.setSecret(path, { 'jwt-keyset': '{"v":1}' })
    await double.setFault({ kind: 'slow', method: 'POST', delayMs: 600, times: 1 })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    const pending = backend.write('{"mine":true}')
    await waitFor(() => kvRequests(double, 'POST').length > 0, { intervalMs: 5, what: 'the held POST' })
    double.setSecret(path, { 'jwt-keyset': '{"theirs":true}', added: 'by-them' })
    assert.deepEqual(await pending, { text: '{"mine":true}', version: '3' })
    assert.deepEqual(double.secret(path), { 'jwt-keyset': '{"mine":true}', added: 'by-them' })
    assert.deepEqual(
      kvRequests(double, 'POST').map((r) => (r.body as { options: { cas: number } }).options.cas),
      [1, 2],
    )
  })

  it('writes over a deleted latest version with that version as cas', async (t) => {
    double.setSecret(path, { 'jwt-keyset': '{}', old: 'gone' })
    double.deleteLatest(path)
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    assert.equal((await backend.write('{"back":1}', '1')).version, '2')
    assert.deepEqual(double.secret(path), { 'jwt-keyset': '{"back":1}' })
  })

  it('does not repeat a POST that may have been applied (500, cut, timed out), but does when sealed or rate limited', async (t) => {
    double.setSecret(path, { 'jwt-keyset': '{}' })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    await double.setFault({ kind: '500', method: 'POST' })
    assert.equal((await backendError(backend.write('{"x":1}', '1'))).reason, 'server_error')
    assert.equal(kvRequests(double, 'POST').length, 1)
    // Nor one whose connection broke once the request was sent: it may have reached storage.
    double.requests.length = 0
    await double.setFault({ kind: 'reset', method: 'POST' })
    assert.equal((await backendError(backend.write('{"x":1}', '1'))).reason, 'unreachable')
    assert.equal(kvRequests(double, 'POST').length, 1)
    // Nor one that got no answer in time.
    double.requests.length = 0
    const impatient = backendFor(double, { path, timeoutMs: 200 })
    t.after(() => impatient.close())
    await double.setFault({ kind: 'slow', method: 'POST', delayMs: 5000, times: 1 })
    assert.equal((await backendError(impatient.write('{"x":1}', '1'))).reason, 'timeout')
    assert.equal(kvRequests(double, 'POST').length, 1)
    // Refused before it was applied, it is sent again: sealed, or rate limited.
    for (const kind of ['sealed', '429'] as const) {
      double.requests.length = 0
      await double.setFault({ kind, method: 'POST', times: 1 })
      const current = (await backend.read()).version
      assert.equal((await backend.write('{"x":1}', current)).version, String(Number(current) + 1), kind)
      assert.equal(kvRequests(double, 'POST').length, 2, kind)
    }
    assert.equal(kvRequests(double, 'POST').length, 2)
  })

  it('a write whose answer a proxy rewrote (200, not JSON) landed all the same: read back, reported with a notice, not failed', async (t) => {
    // Failed, a re-run of the command would apply its change twice: a second rotate --compromised
    // cuts off the key the first one made current.
    double.setSecret(path, { 'jwt-keyset': '{"v":1}' })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    await double.setFault({ kind: 'applied_not_json', method: 'POST', times: 1 })
    const snap = await backend.write('{"v":2}', '1')
    assert.deepEqual([snap.text, snap.version], ['{"v":2}', '2'])
    assert.match(
      snap.notice ?? '',
      /^vault:secret\/\S+: write: HTTP 200 body is not JSON; reading it back shows the keyset written as version 2: the write landed$/,
    )
    assert.equal(kvRequests(double, 'POST').length, 1, 'the write is not sent again')
    await double.setFault({ kind: 'applied_not_json', method: 'POST', times: 1 })
    assert.equal((await backend.write('{"v":3}', null).catch((e: Error) => e)).constructor.name, 'CasConflictError', 'a create over a keyset is still refused')
    // Not applied (the proxy answered alone): the read back shows the old version, and the write fails as before.
    await double.setFault({ kind: 'not_json', method: 'POST', times: 1 })
    const err = await backendError(backend.write('{"v":4}', '2'))
    assert.equal(err.reason, 'bad_response')
    assert.equal(double.version(path), 2)
    assert.deepEqual(double.secret(path), { 'jwt-keyset': '{"v":2}' })
  })

  /**
   * A KV v2 secret behind a proxy that rewrites what Vault answers a write: `answer` says what the
   * POST gets back, after `onWrite` decides what is stored (the write itself, another writer's).
   */
  async function rewritingKv(
    t: { after(fn: () => unknown): void },
    onWrite: (text: string, version: number) => { text: string; answer: string; status?: number },
  ) {
    let stored = { text: '{"k":1}', version: 1 }
    const server = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => void (body += c))
      req.on('end', () => {
        if (req.method === 'GET') {
          res.writeHead(200, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ data: { data: { 'jwt-keyset': stored.text }, metadata: { version: stored.version } } }))
          return
        }
        const sent = JSON.parse(body) as { data: { 'jwt-keyset': string } }
        const next = onWrite(sent.data['jwt-keyset'], stored.version + 1)
        stored = { text: next.text, version: stored.version + 1 }
        res.writeHead(next.status ?? 200, { 'content-type': 'application/json' }).end(next.answer)
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => server.close())
    const backend = createVaultBackend({ addr: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 'hvs.test-token', retries: 0 })
    t.after(() => backend.close())
    return backend
  }

  it('a write answered 200 with JSON but no data.version is read back: landed, with the version read and a notice', async (t) => {
    const backend = await rewritingKv(t, (text) => ({ text, answer: '{"data":{}}' }))
    const written = await backend.write('{"k":2}', '1')
    assert.equal(written.version, '2')
    assert.match(written.notice ?? '', /answer without data\.version; reading it back shows the keyset written as version 2: the write landed/)
  })

  it('a write whose answer was lost while another writer took the next version is not reported as landed', async (t) => {
    // The proxy cut the answer; the version after the one read holds another writer's keyset.
    const backend = await rewritingKv(t, () => ({ text: '{"k":"other"}', answer: '<html>bad gateway</html>', status: 200 }))
    const err = await backendError(backend.write('{"k":2}', '1'))
    assert.equal(err.reason, 'bad_response')
  })

  it('create-only that loses the race to another creator is a CasConflictError, nothing written', async (t) => {
    // Read: no secret. Write (cas 0): another writer created it meanwhile.
    const server = http.createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        if (req.method === 'GET') res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[]}')
        else res.writeHead(400, { 'content-type': 'application/json' }).end('{"errors":["check-and-set parameter did not match the current version"]}')
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => server.close())
    const backend = createVaultBackend({ addr: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 'hvs.test-token', retries: 0 })
    t.after(() => backend.close())
    await assert.rejects(
      backend.write('{"k":1}', null),
      (err: Error) => err instanceof CasConflictError && /another writer changed the secret first/.test(err.message),
    )
  })

  it('rejects an expectedVersion that is not a Vault version as a TypeError', async (t) => {
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    await assert.rejects(backend.write('{}', 'sha256:abc'), { name: 'TypeError', message: /expectedVersion must be a Vault version number/ })
    assert.equal(double.requests.length, 0)
  })

  it('fails forbidden when the token may not write', async (t) => {
    double.setSecret(path, { 'jwt-keyset': '{}' })
    const backend = backendFor(double, { path })
    t.after(() => backend.close())
    await double.setFault({ kind: '403', method: 'POST' })
    const err = await backendError(backend.write('{}', '1'))
    assert.equal(err.reason, 'forbidden')
    assert.match(err.message, /write: HTTP 403 \(permission denied\)/)
  })
})

// A write carries the secret's other fields into the next version. One nested deeper than the
// stack (Vault's JSON takes any depth; a hostile Vault or a proxy) cannot be sent back: the write
// is refused as a bad answer, with the reason and without a POST, not a RangeError called io_error.
describe('vault backend write() over a field nested deeper than the stack', () => {
  it('attack: fails bad_response naming the version, and sends nothing', async (t) => {
    const depth = 200_000
    const posts: string[] = []
    const server = http.createServer((req, res) => {
      if (req.method === 'POST') posts.push(req.url ?? '')
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.end(`{"data":{"data":{"jwt-keyset":"{}","other":${'['.repeat(depth)}${']'.repeat(depth)}},"metadata":{"version":3}}}`)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => server.close())
    const backend = createVaultBackend({
      addr: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
      token: 'hvs.test-token',
      path: 'cbc/deep',
      retries: 0,
    })
    t.after(() => backend.close())
    const err = await backendError(backend.write('{"v":4}', '3'))
    assert.equal(err.reason, 'bad_response')
    assert.equal(err.message, 'vault:secret/cbc/deep: write: version 3 holds a field nested too deep to carry into the next version; nothing was written')
    assert.deepEqual(posts, [])
  })
})
