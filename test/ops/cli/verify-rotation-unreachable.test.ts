import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { freePort } from '../../support/free-port.js'
import { PROCESS_LEVEL } from '../../support/tier.js'
import { cbcJwt, cbcJwtProcess } from './cli.js'

// `verify-rotation --url` against instances that do not answer as a replica would: every item
// fails with what was seen, nothing throws, the exit status is 1, and nothing is followed.
describe('verify-rotation against an instance that is not there or not cbc-jwt', () => {
  const seen: string[] = []
  let base = ''
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`)
    // Every path moves elsewhere: a checklist must report the 3xx, not follow it.
    res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' }).end()
  })
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(() => server.close())

  it('a closed port: each item names the refusal', async () => {
    const url = `http://127.0.0.1:${await freePort()}`
    const r = await cbcJwt(['verify-rotation', '--url', url, '--previous-kid', 'k-old', '--legacy-token', 'a.b.c'])
    assert.equal(r.code, 1, r.stderr)
    assert.match(r.stdout, /^✗ 1\. active key: cannot read \/metrics: ECONNREFUSED$/m)
    assert.match(r.stdout, /^✗ 3\. legacy token: cannot call \/v1\/whoami: ECONNREFUSED$/m)
    assert.match(r.stdout, /^rotation NOT verified: active key, keys loaded, legacy token, backend errors, rotations failed$/m)
  })

  it('a redirect is reported as its status, never followed; the legacy token goes only to the instance asked', async () => {
    const r = await cbcJwt(['verify-rotation', '--url', base, '--legacy-token', 'a.b.c', '--json'])
    assert.equal(r.code, 1, r.stderr)
    const out = JSON.parse(r.stdout) as { ok: boolean; items: Array<{ name: string; result: string; detail: string }> }
    assert.equal(out.ok, false)
    const detail = Object.fromEntries(out.items.map((i) => [i.name, `${i.result} ${i.detail}`]))
    assert.equal(detail['active key'], 'fail cannot read /metrics: HTTP 302')
    assert.equal(detail['legacy token'], 'fail /v1/whoami answered 302')
    assert.deepEqual(seen.sort(), ['GET /metrics -', 'GET /v1/keys -', 'GET /v1/whoami Bearer a.b.c'])
  })

  it('attack: an instance answering control sequences in a kid label, a kid and a reason: none reaches the terminal raw', async () => {
    const E = '\u001b[31mRED\u001b[0m\u009b2J'
    const hostile = http.createServer((req, res) => {
      if (req.url === '/metrics') {
        res
          .writeHead(200)
          .end(`cbc_jwt_active_key_age_seconds{kid="k-${E}"} 5\ncbc_jwt_keys_loaded 1\ncbc_jwt_backend_errors_total 0\ncbc_jwt_key_rotations_total 1\n`)
      } else if (req.url === '/v1/whoami') res.writeHead(401).end(JSON.stringify({ kid: `k-${E}`, reason: E }))
      else res.writeHead(200).end(JSON.stringify({ keys: [{ kid: `k-${E}`, status: 'current', verifies: true }] }))
    })
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve))
    try {
      const url = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`
      const r = await cbcJwt(['verify-rotation', '--url', url, '--previous-kid', 'k-old', '--legacy-token', 'a.b.c'])
      assert.equal(r.code, 1, r.stderr)
      assert.doesNotMatch(r.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
      assert.match(r.stdout, /^✓ 1\. active key: kid k-\\x1b\[31mRED\\x1b\[0m\\x9b2J \(previous k-old\)/m)
    } finally {
      hostile.close()
    }
  })
})

// Whatever answers on the URL chooses the /metrics page, up to the 8 MiB cap. Its label sets
// were read by searching for `name="value"` anywhere, which cost each position a scan to the end
// of the set: one 4 MiB set without "=" kept the CLI at full CPU for hours, past every deadline
// (the HTTP deadline ends with the answer). A hang cannot be interrupted in-process: the CLI runs
// as a process, killed if it has not finished well after a linear read would have.
describe('verify-rotation against a /metrics page made to backtrack', PROCESS_LEVEL, () => {
  it('attack: a 4 MiB label set without "=" is read at once; the sample counts, its labels do not', async () => {
    const hostile = http.createServer((req, res) => {
      if (req.url === '/metrics') res.writeHead(200).end(`cbc_jwt_keys_loaded{${'y'.repeat(4 * 1024 * 1024)}} 1\ncbc_jwt_backend_errors_total 0\n`)
      else res.writeHead(200).end(JSON.stringify({ keys: [{ kid: 'k-new', status: 'current', verifies: true }] }))
    })
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve))
    try {
      const url = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`
      const r = await cbcJwtProcess(['verify-rotation', '--url', url], { timeoutMs: 60_000 })
      assert.match(r.stdout, /^✓ 2\. keys loaded: cbc_jwt_keys_loaded 1, verifying keys in \/v1\/keys 1 \(k-new\)$/m, r.stdout + r.stderr)
    } finally {
      hostile.close()
    }
  })
})
