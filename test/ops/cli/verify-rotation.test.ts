import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { cbcJwt } from './cli.js'

/**
 * `verify-rotation --replica … --legacy-token` asks every replica with the legacy token: after an
 * emergency rotation each must reject it for what the rotation did (unknown_kid or revoked), after
 * a routine one each must accept it. Loopback replicas, each answering /v1/whoami its own way.
 */
describe('verify-rotation --replica with --legacy-token: the token asked of every replica', () => {
  const KEYS = JSON.stringify({
    current: 'k-new',
    revoked_before: '2026-11-25T20:00:00Z',
    keys: [{ kid: 'k-new', alg: 'ES256', status: 'current', verifies: true }],
  })
  const servers: http.Server[] = []
  const replica = async (whoami: { status: number; body: unknown }): Promise<string> => {
    const server = http.createServer((req, res) => {
      if (req.url === '/v1/whoami' && req.headers.authorization === 'Bearer a.b.c') res.writeHead(whoami.status).end(JSON.stringify(whoami.body))
      else if (req.url === '/v1/whoami') res.writeHead(401).end(JSON.stringify({ error: 'invalid_token', reason: 'missing' }))
      else res.writeHead(200, { 'content-type': 'application/json' }).end(KEYS)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    servers.push(server)
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }
  const urls: Record<string, string> = {}
  before(async () => {
    urls.cutOff = await replica({ status: 401, body: { error: 'invalid_token', reason: 'unknown_kid' } })
    urls.revoked = await replica({ status: 401, body: { error: 'invalid_token', reason: 'revoked' } })
    urls.accepts = await replica({ status: 200, body: { sub: 'svc', kid: 'k-old' } })
    urls.expired = await replica({ status: 401, body: { error: 'invalid_token', reason: 'expired' } })
  })
  after(() => {
    for (const s of servers) s.close()
  })

  const verify = async (compromised: boolean, ...replicas: string[]) => verifyWith('a.b.c', compromised, ...replicas)
  const verifyWith = async (legacyToken: string, compromised: boolean, ...replicas: string[]) => {
    const r = await cbcJwt([
      'verify-rotation',
      ...replicas.flatMap((u) => ['--replica', u]),
      '--previous-kid',
      'k-old',
      '--legacy-token',
      legacyToken,
      ...(compromised ? ['--compromised'] : []),
      '--json',
    ])
    const out = JSON.parse(r.stdout) as { ok: boolean; items: Array<{ name: string; result: string; detail: string }> }
    const item = out.items.find((i) => i.name.startsWith('legacy token'))
    assert.ok(item, r.stdout)
    return { code: r.code, item }
  }

  it('emergency: rejected by every replica as unknown_kid or revoked passes', async () => {
    const { item } = await verify(true, urls.cutOff!, urls.revoked!)
    assert.deepEqual(item, { name: 'legacy token rejected everywhere', result: 'pass', detail: '401 from all 2 replicas' })
  })

  it('attack: emergency, one replica still accepting the legacy token fails, naming it', async () => {
    const { code, item } = await verify(true, urls.cutOff!, urls.accepts!)
    assert.equal(code, 1)
    assert.equal(item.result, 'fail')
    assert.match(item.detail, new RegExp(`: ${urls.accepts} 200$`))
    assert.doesNotMatch(item.detail, new RegExp(urls.cutOff!))
  })

  it('emergency: a rejection for another reason (expired) shows nothing cut off: fails', async () => {
    const { item } = await verify(true, urls.cutOff!, urls.expired!)
    assert.equal(item.result, 'fail')
    assert.match(item.detail, new RegExp(`${urls.expired} 401 \\(reason expired\\)$`))
  })

  it('routine: accepted by every replica passes; one rejecting it fails', async () => {
    const accepted = await verify(false, urls.accepts!)
    assert.deepEqual(accepted.item, { name: 'legacy token accepted everywhere', result: 'pass', detail: '200 from all 1 replicas' })
    const rejected = await verify(false, urls.accepts!, urls.cutOff!)
    assert.equal(rejected.item.result, 'fail')
    assert.equal(rejected.item.detail, `expected 200: ${urls.cutOff} 401 (reason unknown_kid)`)
  })

  // Found by an audit: --legacy-token "Bearer TOKEN" (an Authorization value) was sent as
  // "Bearer Bearer TOKEN", and every replica answered malformed: a good rotation failed item 3.
  it('a legacy token given as an Authorization value ("Bearer TOKEN") is sent as its token', async () => {
    const { item } = await verifyWith('Bearer a.b.c', false, urls.accepts!)
    assert.deepEqual(item, { name: 'legacy token accepted everywhere', result: 'pass', detail: '200 from all 1 replicas' })
  })
})
