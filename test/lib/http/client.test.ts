import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import tls from 'node:tls'
import type { AddressInfo, Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { createHttpClient, HttpCallError, parseJsonBody, redactSecrets, requestOnce } from '../../../src/lib/http/index.js'
import { socketFailureKind } from '../../../src/lib/http/http-call-error.js'
import { withNodeCaStore } from '../../../src/lib/issuers/issuer-fetch.js'
import { freePort } from '../../support/free-port.js'
import { waitFor } from '../../support/wait.js'
import { makeClientCert, makeTestTls, selfSignedCert, type TestTls } from '../../support/test-tls.js'

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void

/** A real server on loopback; `hits` counts requests per path. */
async function serve(handler: Handler, tls?: { cert: string; key: string }) {
  const hits = new Map<string, number>()
  const wrapped: Handler = (req, res) => {
    hits.set(req.url ?? '', (hits.get(req.url ?? '') ?? 0) + 1)
    handler(req, res)
  }
  const server = tls ? https.createServer(tls, wrapped) : http.createServer(wrapped)
  let connections = 0
  server.on('connection', (socket) => {
    connections++
    socket.on('close', () => void connections--)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    hits,
    /** Connections the server holds open now. */
    connections: () => connections,
    close: () => {
      server.closeAllConnections()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

async function failure(p: Promise<unknown>): Promise<HttpCallError> {
  try {
    await p
  } catch (err) {
    assert.ok(err instanceof HttpCallError, `rejects with HttpCallError, got ${String(err)}`)
    return err
  }
  assert.fail('resolved')
}

describe('the outbound HTTP client', () => {
  let server: Awaited<ReturnType<typeof serve>>
  before(async () => {
    server = await serve((req, res) => {
      switch (req.url) {
        case '/prefix/ok':
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ method: req.method, accept: req.headers.accept }))
          break
        case '/prefix':
        case '/prefix/echo': {
          const chunks: Buffer[] = []
          req.on('data', (c: Buffer) => chunks.push(c))
          req.on('end', () => res.writeHead(201).end(JSON.stringify({ type: req.headers['content-type'], body: Buffer.concat(chunks).toString() })))
          break
        }
        case '/prefix/redirect':
          res.writeHead(302, { location: '/prefix/ok' }).end()
          break
        case '/prefix/declared-exact':
          res.writeHead(200, { 'content-length': '1000' }).end('x'.repeat(1000))
          break
        case '/prefix/streamed-exact':
          res.writeHead(200)
          res.write('x'.repeat(500))
          res.end('x'.repeat(500))
          break
        case '/prefix/headers':
          res.writeHead(200).end(JSON.stringify({ authorization: req.headers.authorization }))
          break
        case '/prefix/declared-huge':
          res.writeHead(200, { 'content-length': '5000' }).end('x'.repeat(5000))
          break
        case '/prefix/streamed-huge':
          res.writeHead(200)
          res.write('x'.repeat(600))
          res.end('x'.repeat(600))
          break
        case '/prefix/silent':
          break // never answers
        case '/prefix/reset':
          res.writeHead(200, { 'content-length': '100' })
          res.write('partial', () => res.destroy())
          break
        default:
          if (req.url?.startsWith('/prefix/status/')) res.writeHead(Number(req.url.slice('/prefix/status/'.length))).end('{}')
          else res.writeHead(500).end('plain text')
      }
    })
  })
  after(() => server.close())

  const client = (over: { timeoutMs?: number; maxResponseBytes?: number; secrets?: () => readonly string[] } = {}) =>
    createHttpClient({
      baseUrl: `${server.url}/prefix`,
      timeoutMs: over.timeoutMs ?? 5000,
      maxResponseBytes: over.maxResponseBytes ?? 1000,
      ...(over.secrets ? { secrets: over.secrets } : {}),
    })

  it('appends the path to the base URL, asks for JSON, and returns any non-3xx status with its body', async () => {
    const c = client()
    const ok = await c.request({ path: '/ok' })
    assert.equal(ok.status, 200)
    assert.deepEqual(JSON.parse(ok.text), { method: 'GET', accept: 'application/json' })
    const other = await c.request({ path: '/nowhere' })
    assert.deepEqual([other.status, other.text], [500, 'plain text'])
    c.close()
  })

  it('sends a JSON body with its content type', async () => {
    const c = client()
    const res = await c.request({ method: 'PUT', path: '/echo', json: { a: 1 }, contentType: 'application/merge-patch+json' })
    assert.equal(res.status, 201)
    assert.deepEqual(JSON.parse(res.text), { type: 'application/merge-patch+json', body: '{"a":1}' })
    // No content type given: JSON's; no path given: the base URL's own.
    const plain = await c.request({ method: 'POST', json: { b: 2 } })
    assert.deepEqual([plain.status, JSON.parse(plain.text)], [201, { type: 'application/json', body: '{"b":2}' }])
    c.close()
  })

  it('only http and https: another scheme is refused when the client is made', () => {
    assert.throws(
      () => createHttpClient({ baseUrl: 'ftp://127.0.0.1/keys', timeoutMs: 5000, maxResponseBytes: 10 }),
      /createHttpClient: ftp: is not http or https/,
    )
  })

  it('requestOnce sends the headers and obeys the signal it is given', async () => {
    const url = new URL(`${server.url}/prefix/headers`)
    const res = await requestOnce(url, { timeoutMs: 5000, maxResponseBytes: 1000, headers: { Authorization: 'Bearer fleet' } })
    assert.deepEqual(JSON.parse(res.text), { authorization: 'Bearer fleet' })
    assert.equal((await failure(requestOnce(url, { timeoutMs: 5000, maxResponseBytes: 1000, signal: AbortSignal.abort() }))).kind, 'aborted')
  })

  it('never follows a redirect: a 3xx is a `redirect` failure with its status', async () => {
    const before = server.hits.get('/prefix/ok') ?? 0
    const err = await failure(client().request({ path: '/redirect' }))
    assert.deepEqual([err.kind, err.status, err.message], ['redirect', 302, 'HTTP 302 redirect not followed'])
    assert.equal(server.hits.get('/prefix/ok') ?? 0, before)
    for (const status of [300, 399]) {
      const edge = await failure(client().request({ path: `/status/${status}` }))
      assert.deepEqual([edge.kind, edge.status], ['redirect', status])
    }
    // A 400 is an answer (Vault refusing a login role says so with one), not a redirect.
    assert.equal((await client().request({ path: '/status/400' })).status, 400)
  })

  it('caps the body, declared or streamed (`too_large`)', async () => {
    const declared = await failure(client().request({ path: '/declared-huge' }))
    assert.deepEqual([declared.kind, declared.status, declared.message], ['too_large', 200, 'HTTP 200 body of 5000 bytes exceeds 1000'])
    const streamed = await failure(client().request({ path: '/streamed-huge' }))
    assert.deepEqual([streamed.kind, streamed.status, streamed.message], ['too_large', 200, 'HTTP 200 body exceeds 1000 bytes'])
    // The cap is inclusive: a body of exactly maxResponseBytes, declared or streamed, is taken.
    for (const path of ['/declared-exact', '/streamed-exact']) assert.equal((await client().request({ path })).text.length, 1000, path)
  })

  it('gives up at the deadline (`timeout`) and when the caller aborts (`aborted`)', async () => {
    const started = performance.now()
    const slow = await failure(client({ timeoutMs: 150 }).request({ path: '/silent' }))
    assert.deepEqual([slow.kind, slow.message], ['timeout', 'no complete answer within 150 ms'])
    // Timers never fire early; the bound above leaves a loaded machine ample room.
    const took = performance.now() - started
    assert.ok(took >= 150 && took < 3000, `a 150 ms deadline took ${took.toFixed(0)} ms`)
    const controller = new AbortController()
    const pending = client().request({ path: '/silent', signal: controller.signal })
    controller.abort()
    assert.equal((await failure(pending)).kind, 'aborted')
    const early = await failure(client().request({ path: '/ok', signal: AbortSignal.abort() }))
    assert.equal(early.kind, 'aborted')
  })

  it('an answer that comes while this process is busy past the deadline is not a `timeout`: the peer was not slow', async () => {
    const c = client({ timeoutMs: 200 })
    const answer = c.request({ path: '/ok' })
    // Another task holds the event loop past the whole deadline (a burst of requests, a
    // loaded machine): the connection and the answer wait behind it, then come in the loop's
    // next turns, after the turn in which a plain timer would already have fired.
    const busyUntil = Date.now() + 600
    while (Date.now() < busyUntil) {}
    assert.equal((await answer).status, 200)
    c.close()
  })

  it('a closed port and a cut-off answer are `unreachable`, with the Node code', async () => {
    const port = await freePort()
    const refused = await failure(requestOnce(new URL(`http://127.0.0.1:${port}/x`), { timeoutMs: 5000, maxResponseBytes: 10 }))
    assert.deepEqual([refused.kind, refused.code, refused.message], ['unreachable', 'ECONNREFUSED', 'ECONNREFUSED'])
    const cut = await failure(client().request({ path: '/reset' }))
    assert.equal(cut.kind, 'unreachable')
    assert.match(cut.message, /^response interrupted/)
  })

  it('blanks the secrets it is given out of every message', async () => {
    const port = await freePort()
    const err = await failure(requestOnce(new URL(`http://127.0.0.1:${port}/`), { timeoutMs: 5000, maxResponseBytes: 10, secrets: () => ['CONNREF'] }))
    assert.equal(err.message, 'E[redacted]USED')
  })

  it('holds no connection once done: after a complete answer, after giving up; with keepAlive, until close()', async () => {
    const own = await serve((req, res) => {
      if (req.url === '/silent') return
      res.writeHead(200).end('{}')
    })
    try {
      const c = createHttpClient({ baseUrl: own.url, timeoutMs: 150, maxResponseBytes: 100 })
      await c.request({ path: '/ok' })
      await waitFor(() => own.connections() === 0, { what: 'the connection closed after the answer' })
      assert.equal((await failure(c.request({ path: '/silent' }))).kind, 'timeout')
      await waitFor(() => own.connections() === 0, { what: 'the connection closed when the request was given up' })
      const pooled = createHttpClient({ baseUrl: own.url, timeoutMs: 5000, maxResponseBytes: 100, keepAlive: true })
      await pooled.request({ path: '/ok' })
      assert.equal(own.connections(), 1, 'kept for the next request')
      pooled.close()
      await waitFor(() => own.connections() === 0, { what: 'the pooled connection closed by close()' })
    } finally {
      await own.close()
    }
  })

  it('a socket error without a code, or with a TLS code Node or OpenSSL names, is classified, never thrown', () => {
    assert.equal(socketFailureKind(undefined), 'unreachable')
    assert.equal(socketFailureKind('ECONNRESET'), 'unreachable')
    for (const code of ['ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_WRONG_VERSION_NUMBER', 'CERT_HAS_EXPIRED']) assert.equal(socketFailureKind(code), 'tls', code)
  })

  it('a header Node refuses is a failure, not a throw', async () => {
    const err = await failure(client().request({ path: '/ok', headers: { authorization: 'Bearer a\nb' } }))
    assert.deepEqual([err.kind, err.code], ['unreachable', 'ERR_INVALID_CHAR'])
  })
})

describe('the outbound HTTP client over TLS', () => {
  const cert = selfSignedCert()
  let server: Awaited<ReturnType<typeof serve>> | undefined
  before(async () => {
    if (cert) server = await serve((_req, res) => res.writeHead(200).end('{"ok":true}'), cert)
  })
  after(async () => {
    await server?.close()
    if (cert) fs.rmSync(cert.dir, { recursive: true, force: true })
  })

  it('verifies the certificate: an unknown issuer is `tls`; with the CA given it is trusted', { skip: cert ? false : 'openssl not installed' }, async () => {
    const url = new URL(`${server!.url}/keys`)
    const refused = await failure(requestOnce(url, { timeoutMs: 5000, maxResponseBytes: 100 }))
    assert.deepEqual([refused.kind, refused.code], ['tls', 'DEPTH_ZERO_SELF_SIGNED_CERT'])
    const trusted = await requestOnce(url, { timeoutMs: 5000, maxResponseBytes: 100, ca: cert!.cert })
    assert.deepEqual([trusted.status, parseJsonBody(trusted.text)], [200, { json: { ok: true }, isJson: true }])
  })

  it('reuses a kept TLS connection without piling a listener onto it per request', { skip: cert ? false : 'openssl not installed' }, async () => {
    // Found reviewing the handshake-then-reset message: it listened for `secureConnect` on
    // every request's socket, and a kept connection, already connected, never emits it again.
    const client = createHttpClient({ baseUrl: server!.url, timeoutMs: 5000, maxResponseBytes: 100, keepAlive: true, ca: cert!.cert })
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      // 25 requests, past the 10 listeners Node warns about, on the one kept connection.
      for (let i = 0; i < 25; i++) assert.equal((await client.request({ path: '/keys' })).status, 200)
      await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('warning', onWarning)
      client.close()
    }
    assert.deepEqual(
      warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
      [],
    )
  })

  it("parses a CA bundle once, not at every request (Node's store: ~20 ms)", { skip: cert ? false : 'openssl not installed' }, async () => {
    const url = new URL(`${server!.url}/keys`)
    const ca = withNodeCaStore(cert!.cert)
    const made = tls.createSecureContext
    let contexts = 0
    tls.createSecureContext = (options) => {
      contexts++
      return made(options)
    }
    try {
      for (let i = 0; i < 3; i++) assert.equal((await requestOnce(url, { timeoutMs: 5000, maxResponseBytes: 100, ca })).status, 200)
    } finally {
      tls.createSecureContext = made
    }
    assert.ok(contexts <= 1, `${contexts} TLS contexts made for one CA bundle`)
  })
})

/** A CA and the certificates it signed, or undefined when `openssl` is not installed. */
function testTlsOrSkip(): TestTls | undefined {
  try {
    return makeTestTls()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

describe('the outbound HTTP client with mutual TLS (a server that requires a client certificate)', () => {
  const pki = testTlsOrSkip()
  const other = pki && testTlsOrSkip()
  const skip = pki && other ? false : 'openssl not installed'
  let server: Awaited<ReturnType<typeof serve>> | undefined
  let client: { cert: string; key: string }
  let stranger: { cert: string; key: string }
  const seen: string[] = []
  before(async () => {
    if (!pki || !other) return
    client = makeClientCert(pki, 'cbc-jwt-ops')
    stranger = makeClientCert(other, 'stranger')
    server = await serve(
      (req, res) => {
        // Reached only by an authorized client: the server refuses any other in the handshake.
        const peer = (req.socket as tls.TLSSocket).getPeerCertificate()
        seen.push(String(peer.subject?.CN))
        res.writeHead(200).end(JSON.stringify({ cn: peer.subject?.CN }))
      },
      { cert: pki.cert, key: pki.key, ca: pki.ca, requestCert: true, rejectUnauthorized: true } as { cert: string; key: string },
    )
  })
  after(async () => {
    await server?.close()
    for (const t of [pki, other]) if (t) fs.rmSync(t.dir, { recursive: true, force: true })
  })
  const ask = (opts: { ca?: string; cert?: string; key?: string }) =>
    requestOnce(new URL(`${server!.url}/v1/secret`), { timeoutMs: 5000, maxResponseBytes: 1000, ...opts })

  it('with the client certificate and key the request succeeds, the server seeing that certificate', { skip }, async () => {
    const answer = await ask({ ca: pki!.ca, ...client })
    assert.deepEqual([answer.status, JSON.parse(answer.text)], [200, { cn: 'cbc-jwt-ops' }])
    // A client with the same CA and no certificate does not borrow one (the CA's context is cached).
    await failure(ask({ ca: pki!.ca }))
    assert.equal((await ask({ ca: pki!.ca, ...client })).status, 200)
    assert.deepEqual(seen, ['cbc-jwt-ops', 'cbc-jwt-ops'])
  })

  it('without a client certificate, or with one its CA did not sign: a failure, and no request is served', { skip }, async () => {
    const before = seen.length
    for (const opts of [{ ca: pki!.ca }, { ca: pki!.ca, ...stranger }]) {
      const err = await failure(ask(opts))
      // The server's TLS alert, or the reset that follows it: the client has sent its request
      // by then, and a reset drops what the server sent before it.
      assert.ok(
        (err.kind === 'tls' && /^ERR_SSL_TLSV13_ALERT_(CERTIFICATE_REQUIRED|UNKNOWN_CA)$/.test(err.code ?? '')) ||
          (err.kind === 'unreachable' && err.code === 'ECONNRESET' && err.message.includes('refuses the client certificate')),
        `${err.kind} ${err.code}: ${err.message}`,
      )
    }
    assert.equal(seen.length, before, 'no request reached the handler')
  })

  it('a refusal that comes as a reset after the handshake says where to look, not a bare ECONNRESET', { skip }, async () => {
    // A server that completes the handshake whatever the client shows, then resets the
    // connection of a client it does not accept: the reset that drops a TLS alert, made certain.
    const server = https.createServer({ cert: pki!.cert, key: pki!.key, ca: pki!.ca, requestCert: true, rejectUnauthorized: false }, (_req, res) =>
      res.end('{}'),
    )
    const raw = new Map<number, Socket>()
    server.on('connection', (socket: Socket) => raw.set(socket.remotePort!, socket))
    server.prependListener('secureConnection', (socket: tls.TLSSocket) => {
      if (!socket.authorized) raw.get(socket.remotePort!)!.resetAndDestroy()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const url = new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}/v1/secret`)
      const err = await failure(requestOnce(url, { timeoutMs: 5000, maxResponseBytes: 100, ca: pki!.ca }))
      assert.deepEqual(
        [err.kind, err.code, err.message],
        [
          'unreachable',
          'ECONNRESET',
          'ECONNRESET after the TLS handshake, before any answer: what a server does that refuses the client certificate, or requires one',
        ],
      )
      assert.equal((await requestOnce(url, { timeoutMs: 5000, maxResponseBytes: 100, ca: pki!.ca, ...client })).status, 200)
    } finally {
      server.closeAllConnections()
      server.close()
    }
  })

  it('a reset of plain HTTP, or once the answer has begun, is not put down to a client certificate', { skip }, async () => {
    const plain = await serve((req) => (req.socket as Socket).resetAndDestroy())
    // TLS runs over the connection: the reset is the TCP socket's, under it.
    const raw = new Map<number, Socket>()
    const secure = https.createServer({ cert: pki!.cert, key: pki!.key }, (req, res) => {
      res.writeHead(200, { 'content-length': '100' })
      res.write('{')
      setTimeout(() => raw.get(req.socket.remotePort!)!.resetAndDestroy(), 20)
    })
    secure.on('connection', (socket: Socket) => raw.set(socket.remotePort!, socket))
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve))
    try {
      const bare = await failure(requestOnce(new URL(`${plain.url}/now`), { timeoutMs: 5000, maxResponseBytes: 1000 }))
      assert.deepEqual([bare.kind, bare.code, bare.message], ['unreachable', 'ECONNRESET', 'ECONNRESET'])
      const url = new URL(`https://127.0.0.1:${(secure.address() as AddressInfo).port}/headers-first`)
      const begun = await failure(requestOnce(url, { timeoutMs: 5000, maxResponseBytes: 1000, ca: pki!.ca }))
      assert.equal(begun.kind, 'unreachable')
      assert.doesNotMatch(begun.message, /client certificate/)
    } finally {
      await plain.close()
      secure.closeAllConnections()
      secure.close()
    }
  })
})

describe('redactSecrets and parseJsonBody', () => {
  it('no secret of 4+ characters survives redaction, wherever it appears', () => {
    const word = fc.stringMatching(/^[A-Z0-9.]{4,12}$/)
    fc.assert(
      fc.property(fc.array(fc.string(), { minLength: 1, maxLength: 4 }), word, (parts, secret) => {
        const out = redactSecrets(parts.join(secret), [secret])
        assert.ok(!out.includes(secret))
        assert.equal(out.split('[redacted]').length, parts.join(secret).split(secret).length)
      }),
    )
    assert.equal(redactSecrets('abc token', ['abc']), 'abc token')
  })

  it('JSON or nothing: empty and non-JSON bodies are not JSON, and never throw', () => {
    assert.deepEqual(parseJsonBody(' '), { json: undefined, isJson: false })
    assert.deepEqual(parseJsonBody('<html>'), { json: undefined, isJson: false })
    assert.deepEqual(parseJsonBody('null'), { json: null, isJson: true })
  })
})
