import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, it } from 'node:test'
import { runInstanceChecklist } from '../../../src/ops/fleet/instance-checklist.js'

/**
 * The rotations item of the checklist: a counter at 0 is a missed rotation only while the
 * instance still signs with a previous key. A replica started after the promotion counts 0
 * (its first load is not a rotation) and must not be reported as having missed it.
 */
describe('verify-rotation --url: the rotations item', () => {
  let server: http.Server
  let base: string
  let current = 'k-new'
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/metrics') {
        res
          .writeHead(200, { 'content-type': 'text/plain' })
          .end(`cbc_jwt_active_key_age_seconds{kid="${current}"} 60\ncbc_jwt_key_rotations_total 0\ncbc_jwt_keys_loaded 2\ncbc_jwt_backend_errors_total 0\n`)
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            keys: [
              { kid: 'k-new', status: 'current' },
              { kid: 'k-old', status: 'verify-only' },
            ],
          }),
        )
      }
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const rotations = async () =>
    (await runInstanceChecklist({ base, previousKids: ['k-old'], legacyToken: undefined, maxAgeMs: 600_000 })).find((i) => i.name === 'rotations')!

  it('0 with a new current kid passes: the instance started after the rotation', async () => {
    current = 'k-new'
    const item = await rotations()
    assert.equal(item.result, 'pass', item.detail)
    assert.match(item.detail, /started after the rotation/)
  })

  it('0 with the previous kid still current fails: the rotation was missed', async () => {
    current = 'k-old'
    const item = await rotations()
    assert.equal(item.result, 'fail', item.detail)
    assert.match(item.detail, /has not seen a rotation/)
  })
})

/**
 * Whatever answers on the URL is foreign text: the runbook warns that a port-forward that
 * silently failed leaves another process answering there. A kid, a reason or a label value
 * holding ESC/OSC sequences or a bidi override must reach the operator's terminal escaped.
 */
describe('verify-rotation --url: what the instance answers reaches the terminal escaped', () => {
  let server: http.Server
  let base: string
  const HOSTILE = 'k-x\u001b]0;pwned\u0007\u001b[2J\u202e'
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/metrics') {
        res
          .writeHead(200, { 'content-type': 'text/plain' })
          .end(
            `cbc_jwt_active_key_age_seconds{kid="${HOSTILE}"} 5\ncbc_jwt_key_rotations_total 0\ncbc_jwt_keys_loaded 2\ncbc_jwt_backend_errors_total{reason="x\u001b[31m"} 3\n`,
          )
      } else if (req.url === '/v1/whoami') {
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_token', reason: `expired\u001b[2K\r${HOSTILE}` }))
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            keys: [
              { kid: HOSTILE, verifies: true },
              { kid: `old\u009b8m`, verifies: true },
            ],
          }),
        )
      }
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  it('every item detail is printable ASCII, the escaped values still named', async () => {
    const items = await runInstanceChecklist({ base, previousKids: ['k-old'], legacyToken: 'abc', maxAgeMs: 600_000 })
    for (const item of items) assert.doesNotMatch(item.detail, /[^\x20-\x7e]/, `${item.name}: ${JSON.stringify(item.detail)}`)
    const detail = (name: string) => items.find((i) => i.name === name)!.detail
    assert.match(detail('active key'), /kid k-x\\x1b\]0;pwned\\x07/)
    assert.match(detail('keys loaded'), /old\\x9b8m/)
    assert.match(detail('legacy token'), /reason expired\\x1b\[2K\\x0d/)
    assert.match(detail('backend errors'), /x\\x1b\[31m=3/)
  })
})
