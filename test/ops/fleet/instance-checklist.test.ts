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

/**
 * One instance whose answers each case sets: the verdict of each item, passing and failing for
 * its own reason. Above all, after an emergency rotation an instance still verifying with a
 * leaked kid, or accepting a legacy token for any other reason than the cut-off, is never clear.
 */
describe('verify-rotation --url: each item passes and fails for its own reason', () => {
  let server: http.Server
  let base: string
  const NEW_AND_OLD = [
    { kid: 'k-new', status: 'current', verifies: true },
    { kid: 'k-old', status: 'verify-only', verifies: true },
  ]
  let answer: { metrics: string; metricsStatus?: number; date?: string; keys: unknown; keysStatus?: number; whoami: { status: number; body: unknown } }
  const metrics = (o: { kid?: string; age?: number; loaded?: number; rotations?: number; errors?: string; extra?: string } = {}) =>
    [
      `cbc_jwt_active_key_age_seconds{kid="${o.kid ?? 'k-new'}"} ${o.age ?? 60}`,
      `cbc_jwt_key_rotations_total ${o.rotations ?? 1}`,
      `cbc_jwt_keys_loaded ${o.loaded ?? 2}`,
      o.errors ?? 'cbc_jwt_backend_errors_total{reason="timeout"} 0\ncbc_jwt_backend_errors_total{reason="not_found"} 0',
      o.extra ?? '',
    ].join('\n')
  const reset = () => {
    answer = { metrics: metrics(), keys: { issuer: 'cbc-omega2', keys: NEW_AND_OLD }, whoami: { status: 200, body: { sub: 'x', kid: 'k-old' } } }
  }
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/metrics')
        res.writeHead(answer.metricsStatus ?? 200, { 'content-type': 'text/plain', ...(answer.date ? { date: answer.date } : {}) }).end(answer.metrics)
      else if (req.url === '/v1/whoami' && req.headers.authorization !== 'Bearer legacy')
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_token', reason: 'missing' }))
      else if (req.url === '/v1/whoami') res.writeHead(answer.whoami.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.whoami.body))
      else res.writeHead(answer.keysStatus ?? 200, { 'content-type': 'application/json' }).end(JSON.stringify(answer.keys))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))

  const check = async (o: { compromised?: boolean; legacyToken?: string; maxAgeMs?: number; previousKids?: string[] } = {}) => {
    const items = await runInstanceChecklist({
      base,
      previousKids: o.previousKids ?? ['k-old'],
      legacyToken: o.legacyToken,
      maxAgeMs: o.maxAgeMs ?? 600_000,
      ...(o.compromised ? { compromised: true } : {}),
    })
    return (name: string) => {
      const found = items.find((i) => i.name === name)
      assert.ok(found, name)
      return found
    }
  }

  it('a routine rotation loaded everywhere on the instance: every item passes', async () => {
    reset()
    const item = await check({ legacyToken: 'legacy' })
    for (const name of ['active key', 'keys loaded', 'legacy token', 'backend errors', 'rotations']) assert.equal(item(name).result, 'pass', item(name).detail)
    assert.equal(item('active key').detail, 'kid k-new (previous k-old), age 1m <= 10m')
    assert.equal(item('keys loaded').detail, 'cbc_jwt_keys_loaded 2, verifying keys in /v1/keys 2 (k-new, k-old)')
    assert.equal(item('legacy token').detail, '/v1/whoami answered 200 (kid k-old)')
  })

  it('active key: the previous kid still current, an age over --max-age, or two series fail; an age of exactly --max-age passes', async () => {
    reset()
    answer.metrics = metrics({ kid: 'k-old' })
    assert.match((await check())('active key').detail, /still the previous kid/)
    answer.metrics = metrics({ age: 601 })
    assert.equal((await check())('active key').result, 'fail')
    answer.metrics = metrics({ age: 600 })
    assert.equal((await check())('active key').result, 'pass')
    answer.metrics = metrics({ extra: 'cbc_jwt_active_key_age_seconds{kid="k-other"} 5' })
    assert.equal((await check())('active key').detail, '2 cbc_jwt_active_key_age_seconds series, expected exactly 1')
  })

  it('keys loaded: the gauge and /v1/keys disagreeing, one key only, or the previous kid gone fail a routine rotation', async () => {
    reset()
    answer.metrics = metrics({ loaded: 3 })
    assert.match((await check())('keys loaded').detail, /: they differ$/)
    answer.metrics = metrics({ loaded: 1 })
    answer.keys = { keys: [NEW_AND_OLD[0]] }
    assert.match((await check())('keys loaded').detail, /expected at least 2 \(new and previous\)/)
    answer.metrics = metrics({ loaded: 2 })
    answer.keys = { keys: [NEW_AND_OLD[0], { kid: 'k-other', status: 'staged', verifies: true }] }
    assert.match((await check())('keys loaded').detail, /the previous kid k-old no longer verifies$/)
  })

  it("keys loaded counts the keyset's verifying keys only: not a retired key, not a trusted issuer's", async () => {
    reset()
    answer.metrics = metrics({ loaded: 2 })
    answer.keys = {
      issuer: 'cbc-omega2',
      keys: [
        ...NEW_AND_OLD,
        { kid: 'k-retired', status: 'verify-only', verifies: false },
        { kid: 'k-past', status: 'verify-only', not_after: '2000-01-01T00:00:00Z' },
        { issuer: 'https://idp.example.com', kid: 'idp-1', status: 'trusted', verifies: true },
      ],
    }
    assert.equal((await check())('keys loaded').result, 'pass')
  })

  it('attack: after an emergency rotation the leaked kid still listed as verifying fails keys loaded', async () => {
    reset()
    const item = await check({ compromised: true })
    assert.equal(item('keys loaded').result, 'fail')
    assert.match(item('keys loaded').detail, /k-old still verifies after an emergency rotation$/)
    answer.metrics = metrics({ loaded: 1 })
    answer.keys = { keys: [NEW_AND_OLD[0]] }
    assert.equal((await check({ compromised: true }))('keys loaded').result, 'pass', 'one key after an emergency rotation is the goal')
  })

  it('attack: after an emergency rotation a legacy token accepted, or refused for another reason, fails', async () => {
    reset()
    answer.metrics = metrics({ loaded: 1 })
    answer.keys = { keys: [NEW_AND_OLD[0]] }
    const legacy = (status: number, body: unknown) => {
      answer.whoami = { status, body }
      return check({ compromised: true, legacyToken: 'legacy' })
    }
    for (const reason of ['unknown_kid', 'revoked']) {
      const item = (await legacy(401, { error: 'invalid_token', reason }))('legacy token')
      assert.equal(item.result, 'pass', reason)
      assert.equal(item.detail, `/v1/whoami answered 401 (reason ${reason}): rejected, as it must be after an emergency rotation`)
    }
    for (const reason of ['expired', 'bad_audience', 'missing', undefined]) {
      assert.equal((await legacy(401, { error: 'invalid_token', reason }))('legacy token').result, 'fail', String(reason))
    }
    assert.equal((await legacy(403, { error: 'invalid_token', reason: 'unknown_kid' }))('legacy token').result, 'fail')
    const accepted = (await legacy(200, { sub: 'x', kid: 'k-old' }))('legacy token')
    assert.equal(accepted.result, 'fail')
    assert.match(accepted.detail, /^\/v1\/whoami answered 200 \(kid k-old\): after an emergency rotation/)
  })

  it('legacy token: refused after a routine rotation fails; without --legacy-token the item is skipped', async () => {
    reset()
    answer.whoami = { status: 401, body: { error: 'invalid_token', reason: 'unknown_kid' } }
    const item = (await check({ legacyToken: 'legacy' }))('legacy token')
    assert.equal(item.result, 'fail')
    assert.equal(item.detail, '/v1/whoami answered 401 (reason unknown_kid)')
    assert.equal((await check())('legacy token').result, 'skip')
  })

  it('backend errors: 0 passes; errors from before pass only while the last read is recent', async () => {
    reset()
    const serverNow = Date.parse('2026-11-25T20:00:00Z') / 1000
    answer.date = new Date(serverNow * 1000).toUTCString()
    const errors = (lastReadAgo: number) =>
      `cbc_jwt_backend_errors_total{reason="timeout"} 2\ncbc_jwt_backend_errors_total{reason="not_found"} 0\n` +
      `cbc_jwt_keyset_last_success_timestamp_seconds ${serverNow - lastReadAgo}\ncbc_jwt_keyset_refresh_interval_seconds 30`
    answer.metrics = metrics({ errors: errors(62) })
    const recent = (await check())('backend errors')
    assert.equal(recent.result, 'pass', recent.detail)
    assert.match(recent.detail, /^cbc_jwt_backend_errors_total 2 \(timeout=2\) from before; the last keyset read succeeded 62s ago/)
    answer.metrics = metrics({ errors: errors(63) })
    const stale = (await check())('backend errors')
    assert.equal(stale.result, 'fail', stale.detail)
    assert.equal(stale.detail, 'cbc_jwt_backend_errors_total 2 (timeout=2); the last successful read was 63s ago')
    answer.metrics = metrics({ errors: 'cbc_jwt_backend_errors_total{reason="timeout"} 2' })
    assert.match((await check())('backend errors').detail, /; no successful read yet$/)
    answer.metrics = metrics({ errors: '' })
    assert.equal((await check())('backend errors').detail, 'cbc_jwt_backend_errors_total missing from /metrics')
  })

  it('a /metrics or /v1/keys that answers an error page (a wrong URL, a proxy) fails the items that read it, saying so', async () => {
    reset()
    answer.metricsStatus = 503
    const item = await check()
    for (const name of ['active key', 'keys loaded', 'backend errors', 'rotations']) {
      assert.equal(item(name).result, 'fail', name)
      assert.equal(item(name).detail, 'cannot read /metrics: HTTP 503', name)
    }
    reset()
    answer.keysStatus = 500
    assert.equal((await check())('keys loaded').detail, 'cannot read /v1/keys: HTTP 500')
    answer.keysStatus = 200
    answer.metrics = metrics().replace(/^cbc_jwt_keys_loaded.*$/m, '')
    assert.equal((await check())('keys loaded').detail, 'cbc_jwt_keys_loaded missing from /metrics')
  })

  it('without --previous-kid one key loaded is no miss (the first deployment)', async () => {
    reset()
    answer.metrics = metrics({ loaded: 1 })
    answer.keys = { keys: [NEW_AND_OLD[0]] }
    const item = await check({ previousKids: [] })
    assert.equal(item('keys loaded').result, 'pass')
    assert.equal(item('active key').detail, 'kid k-new, age 1m <= 10m')
  })

  it('rotations: counted passes; absent fails; without --previous-kid skipped', async () => {
    reset()
    assert.equal((await check())('rotations').detail, 'cbc_jwt_key_rotations_total 1 >= 1')
    answer.metrics = metrics().replace(/^cbc_jwt_key_rotations_total.*$/m, '')
    assert.equal((await check())('rotations').detail, 'cbc_jwt_key_rotations_total missing from /metrics')
    assert.equal((await check({ previousKids: [] }))('rotations').result, 'skip')
  })
})
