import assert from 'node:assert/strict'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, it } from 'node:test'
import { serviceConfigFromEnv } from '../../src/lib/config.js'
import { createLogger } from '../../src/server/logger.js'
import { createService, type Service } from '../../src/server/service.js'
import { makeKey, makeKeyset } from '../support/keys.js'

// A directly exposed service must not hold sockets for whoever opens them: a client dripping a
// byte of its request now and then, or simply opening more connections than the process can
// serve. Real sockets against a listening server; the bounds come from the environment.

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function listening(env: Record<string, string>): Promise<{ s: Service; port: number }> {
  const config = serviceConfigFromEnv({ CBC_JWT_LOG_LEVEL: 'silent', ...env })
  const text = JSON.stringify(makeKeyset([makeKey('ES256', 'k-http')]))
  const backend = {
    kind: 'memory',
    location: 'memory',
    read: async () => ({ text, version: '1' }),
    write: async () => assert.fail('no writes'),
    close: async () => {},
  }
  const s = createService({ config, backend, logger: createLogger('silent') })
  cleanups.push(() => s.close())
  await s.app.listen({ port: 0, host: '127.0.0.1' })
  return { s, port: (s.app.server.address() as AddressInfo).port }
}

/** A raw client socket: what it received, and a promise of its close. */
function connect(port: number) {
  const socket = net.connect(port, '127.0.0.1')
  cleanups.push(() => socket.destroy())
  let received = ''
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => (received += d))
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()))
  const opened = new Promise<void>((resolve) => socket.on('connect', () => resolve()))
  return { socket, opened, closed, received: () => received }
}

describe('HTTP bounds of a directly exposed service', () => {
  it('attack: a client dripping its headers a byte at a time is answered 408 and cut off at the request timeout', async () => {
    const { port } = await listening({ CBC_JWT_HTTP_REQUEST_TIMEOUT_SECONDS: '1' })
    const slow = connect(port)
    await slow.opened
    slow.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n')
    let open = true
    void slow.closed.then(() => (open = false))
    // A byte every 200 ms: each one resets any idle timer; only a deadline on the whole request ends it.
    const drip = setInterval(() => open && slow.socket.write('X'), 200)
    cleanups.push(() => clearInterval(drip))
    const started = Date.now()
    await slow.closed
    const heldMs = Date.now() - started
    assert.match(slow.received(), /^HTTP\/1\.1 408 /)
    // Bounded by the timeout plus Node's one-second check, never by the client (the 5 s bound is slack for load).
    assert.ok(heldMs < 5000, `held for ${heldMs} ms`)
  })

  it('attack: a client that never finishes its request cannot hold the service open past SIGTERM (close) beyond the request timeout', async () => {
    const { s, port } = await listening({ CBC_JWT_HTTP_REQUEST_TIMEOUT_SECONDS: '1' })
    const slow = connect(port)
    await slow.opened
    slow.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n')
    const drip = setInterval(() => !slow.socket.destroyed && slow.socket.write('X'), 200)
    cleanups.push(() => clearInterval(drip))
    // Node stops timing requests out once its server closes: only the service can still end this one.
    await new Promise((r) => setTimeout(r, 100))
    const started = Date.now()
    const closed = s.close().then(() => Date.now() - started)
    const heldMs = await Promise.race([closed, new Promise<string>((r) => setTimeout(() => r('still open after 8 s'), 8000))])
    assert.equal(typeof heldMs, 'number', String(heldMs))
    assert.ok((heldMs as number) < 5000, `close took ${heldMs} ms`)
    await slow.closed
  })

  it('a well-behaved client on the same server is served, and keeps its connection between requests', async () => {
    const { port } = await listening({ CBC_JWT_HTTP_REQUEST_TIMEOUT_SECONDS: '1' })
    const c = connect(port)
    await c.opened
    c.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    for (let i = 0; i < 200 && (c.received().match(/HTTP\/1\.1 200/g) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 25))
    assert.equal((c.received().match(/HTTP\/1\.1 200/g) ?? []).length, 2)
    assert.equal(c.socket.destroyed, false)
  })

  it('connections past CBC_JWT_HTTP_MAX_CONNECTIONS are closed as they arrive; the ones inside are served', async () => {
    const { port } = await listening({ CBC_JWT_HTTP_MAX_CONNECTIONS: '2' })
    const inside = [connect(port), connect(port)]
    await Promise.all(inside.map((c) => c.opened))
    const extra = connect(port)
    await extra.closed
    assert.equal(extra.received(), '')
    inside[0]!.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    for (let i = 0; i < 200 && !/HTTP\/1\.1 200/.test(inside[0]!.received()); i++) await new Promise((r) => setTimeout(r, 25))
    assert.match(inside[0]!.received(), /^HTTP\/1\.1 200/)
  })

  it('the bounds come from the environment and are checked', () => {
    const config = serviceConfigFromEnv({})
    assert.deepEqual([config.httpRequestTimeoutSeconds, config.httpMaxConnections], [10, 1000])
    assert.throws(() => serviceConfigFromEnv({ CBC_JWT_HTTP_MAX_CONNECTIONS: '0' }), /CBC_JWT_HTTP_MAX_CONNECTIONS/)
    assert.throws(() => serviceConfigFromEnv({ CBC_JWT_HTTP_REQUEST_TIMEOUT_SECONDS: 'soon' }), /CBC_JWT_HTTP_REQUEST_TIMEOUT_SECONDS/)
  })
})
