import assert from 'node:assert/strict'
import net from 'node:net'
import { after, before, describe, it } from 'node:test'
import { runChild } from '../support/run-child.js'
import { SERVER_MAIN } from '../support/service.js'
import { PROCESS_LEVEL } from '../support/tier.js'

/** Runs the built server with `env` until it exits (≤ 20 s). */
function run(env: Record<string, string>) {
  return runChild(process.execPath, [SERVER_MAIN], {
    env: { PATH: process.env.PATH ?? '', HOME: '/tmp', CBC_JWT_KEYSET_FILE: '/nonexistent/keyset.json', CBC_JWT_LOG_LEVEL: 'silent', ...env },
    timeoutMs: 20_000,
    what: 'the server',
  })
}

function assertOneLine(stderr: string, pattern: RegExp) {
  assert.match(stderr, pattern)
  assert.equal(stderr.trim().split('\n').length, 1, `more than one line: ${stderr}`)
  assert.doesNotMatch(stderr, /\s+at .+:\d+:\d+/, 'a stack trace')
}

describe('start-up errors: one clear line and exit 1, never a stack trace', PROCESS_LEVEL, () => {
  const busy = net.createServer()
  let port = 0
  before(() => new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', () => {
    port = (busy.address() as net.AddressInfo).port
    resolve()
  })))
  after(() => new Promise<void>((resolve) => busy.close(() => resolve())))

  it('a busy port', async () => {
    const r = await run({ PORT: String(port), HOST: '127.0.0.1' })
    assert.equal(r.code, 1)
    assertOneLine(r.stderr, new RegExp(`^cbc-jwt: cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use`))
  })

  it('a HOST that is not an address of this machine', async () => {
    const r = await run({ PORT: '0', HOST: '192.0.2.1' }) // TEST-NET-1: never local
    assert.equal(r.code, 1)
    assertOneLine(r.stderr, /^cbc-jwt: cannot listen on 192\.0\.2\.1:0: HOST "192\.0\.2\.1" is not an address of this machine; set HOST/)
  })

  it('a HOST that does not resolve', async () => {
    const r = await run({ PORT: '0', HOST: 'no-such-host.invalid' })
    assert.equal(r.code, 1)
    assertOneLine(r.stderr, /^cbc-jwt: cannot listen on no-such-host\.invalid:0: HOST "no-such-host\.invalid" does not resolve/)
  })

  it('bad configuration, as before', async () => {
    const r = await run({ PORT: 'eighty' })
    assert.equal(r.code, 1)
    assertOneLine(r.stderr, /^cbc-jwt: ERR_CONFIG: PORT must be a number/)
  })
})
