import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, it } from 'node:test'
import { RefusedError, UsageError } from '../../../src/lib/errors.js'
import { describeReplica, replicasLacking } from '../../../src/ops/fleet/fleet.js'
import { requireKeyEverywhere } from '../../../src/ops/fleet/gate.js'
import { createPrometheusFleet } from '../../../src/ops/fleet/prometheus.js'
import { createReplicaFleet } from '../../../src/ops/fleet/replicas.js'
import { freePort } from '../../support/free-port.js'

/** Real HTTP servers on loopback, each answering /v1/keys its own way. */
const ANSWERS: Record<string, (res: http.ServerResponse) => void> = {
  good: (res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        current: 'k-a',
        revoked_before: '2026-11-25T20:00:00Z',
        revocation_rules: 3,
        revocations_newest: '2026-11-25T20:05:00Z',
        keys: [
          { kid: 'k-a', alg: 'ES256', status: 'current', verifies: true },
          { kid: 'k-b', alg: 'ES256', status: 'staged', verifies: true },
          { kid: 'k-old', alg: 'ES256', status: 'verify-only', verifies: false },
        ],
      }),
    ),
  // A replica that trusts another issuer whose key has the staged kid: that key is not ours.
  trusting: (res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        issuer: 'cbc-omega2',
        current: 'k-a',
        revoked_before: null,
        revocation_rules: 0,
        revocations_newest: null,
        keys: [
          { issuer: 'cbc-omega2', kid: 'k-a', alg: 'ES256', status: 'current', verifies: true },
          { issuer: 'https://idp.example.com', kid: 'k-b', alg: 'RS256', status: 'trusted', verifies: true },
        ],
      }),
    ),
  older: (res) =>
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ current: 'k-a', revoked_before: null, keys: [{ kid: 'k-a', alg: 'ES256', status: 'current', verifies: true }] })),
  // A kid no keyset can hold, made to rewrite the operator's terminal (colour, a fake line).
  hostileKid: (res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        current: 'k-a',
        revoked_before: null,
        keys: [{ kid: '\u001b[31mk-b\u001b[0m\r\nevery replica verifies', alg: 'ES256', status: 'current', verifies: true }],
      }),
    ),
  // A not_after no service writes, made so that turning it into text throws: an object whose
  // toString is no function, and an array nested deeper than the stack joining it.
  objectNotAfter: (res) => res.writeHead(200).end('{"revoked_before":null,"keys":[{"kid":"k-b","status":"staged","not_after":{"toString":1,"valueOf":1}}]}'),
  nestedNotAfter: (res) =>
    res.writeHead(200).end(`{"revoked_before":null,"keys":[{"kid":"k-b","status":"staged","not_after":${'['.repeat(100_000)}${']'.repeat(100_000)}}]}`),
  // A replica of a version that writes no `verifies`: its not_after says whether a key still verifies.
  noVerifies: (res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        current: 'k-a',
        revoked_before: null,
        keys: [
          { kid: 'k-a', alg: 'ES256', status: 'current', not_after: null },
          { kid: 'k-retiring', alg: 'ES256', status: 'verify-only', not_after: '2026-11-26T00:00:00Z' },
          { kid: 'k-retired', alg: 'ES256', status: 'verify-only', not_after: '2026-11-25T00:00:00Z' },
        ],
      }),
    ),
  html: (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>502 Bad Gateway</html>'),
  wrongShape: (res) => res.writeHead(200).end('{"keys":[{"kid":"k-b","status":"promoted"}]}'),
  notReady: (res) => res.writeHead(503).end('{"error":"not_ready"}'),
  redirect: (res) => res.writeHead(302, { location: 'http://example.com/' }).end(),
  huge: (res) => res.writeHead(200).end(`{"keys":[],"pad":"${'x'.repeat(300 * 1024)}"}`),
}

describe('the replica fleet (--replica URL): a replica that answers anything but the key list lacks every key', () => {
  const servers: http.Server[] = []
  const urls: Record<string, string> = {}
  before(async () => {
    for (const [name, answer] of Object.entries(ANSWERS)) {
      const server = http.createServer((_req, res) => answer(res))
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      servers.push(server)
      urls[name] = `http://127.0.0.1:${(server.address() as { port: number }).port}`
    }
  })
  after(() => {
    for (const s of servers) s.close()
  })

  it('reads the keys that verify and the revoked_before of a good replica', async () => {
    const view = await createReplicaFleet({ urls: [`${urls.good}/`] }).read()
    const [r] = view.replicas
    assert.equal(r!.reachable, true)
    assert.deepEqual(
      [...r!.keys],
      [
        ['k-a', 'current'],
        ['k-b', 'staged'],
      ],
    )
    assert.equal(r!.revokedBefore, Date.parse('2026-11-25T20:00:00Z') / 1000)
    assert.equal(r!.revocationsNewest, Date.parse('2026-11-25T20:05:00Z') / 1000)
  })

  it('without a verifies field, a key verifies until its not_after: a retired key is not counted as verifying', async () => {
    const fleet = createReplicaFleet({ urls: [urls.noVerifies!], now: () => Date.parse('2026-11-25T12:00:00Z') })
    const [r] = (await fleet.read()).replicas
    assert.deepEqual(
      [...r!.keys],
      [
        ['k-a', 'current'],
        ['k-retiring', 'verify-only'],
      ],
    )
  })

  it('revocations_newest: null is no rule (0); absent (a replica that does not report it) is unknown', async () => {
    const [none] = (await createReplicaFleet({ urls: [urls.trusting!] }).read()).replicas
    assert.equal(none!.revocationsNewest, 0)
    const [older] = (await createReplicaFleet({ urls: [urls.older!] }).read()).replicas
    assert.equal(older!.reachable, true)
    assert.equal(older!.revocationsNewest, undefined)
  })

  it("a trusted issuer's key in /v1/keys is not the keyset's, even under the same kid", async () => {
    const view = await createReplicaFleet({ urls: [urls.trusting!] }).read()
    assert.deepEqual([...view.replicas[0]!.keys], [['k-a', 'current']])
    assert.deepEqual(
      replicasLacking(view, 'k-b').map((r) => r.name),
      [urls.trusting],
    )
  })

  it('garbage, HTML, a wrong shape, 503, a redirect, an oversized body and a closed port all lack the key', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`
    const all = [urls.good!, urls.html!, urls.wrongShape!, urls.notReady!, urls.redirect!, urls.huge!, closed]
    const view = await createReplicaFleet({ urls: all }).read()
    assert.deepEqual(
      replicasLacking(view, 'k-b').map((r) => r.name),
      all.slice(1),
    )
    const problems = view.replicas.slice(1).map((r) => r.problem)
    assert.deepEqual(problems.slice(0, 2), ['/v1/keys answered something that is not the key list', '/v1/keys answered something that is not the key list'])
    assert.equal(problems[2], '/v1/keys answered HTTP 503')
    assert.equal(problems[3], '/v1/keys answered HTTP 302')
    assert.match(problems[5]!, /^unreachable: ECONNREFUSED/)
    await assert.rejects(requireKeyEverywhere(createReplicaFleet({ urls: all }), 'k-b', 'promote'), (err: unknown) => {
      assert.ok(err instanceof RefusedError)
      assert.match(err.message, /^refusing to promote k-b: 6 of 7 replicas do not verify with it yet: /)
      for (const url of all.slice(1)) assert.ok(err.message.includes(url), url)
      return true
    })
    assert.match(await requireKeyEverywhere(createReplicaFleet({ urls: [urls.good!] }), 'k-b', 'promote'), /every replica verifies with k-b/)
  })

  it('a replica named twice (a trailing slash, a repeated flag) is one replica, counted once', async () => {
    const fleet = createReplicaFleet({ urls: [urls.good!, `${urls.good}/`, urls.good!, urls.older!] })
    assert.equal(fleet.description, `--replica ${urls.good}, ${urls.older}`)
    assert.deepEqual(
      (await fleet.read()).replicas.map((r) => r.name),
      [urls.good, urls.older],
    )
    await assert.rejects(requireKeyEverywhere(fleet, 'k-b', 'promote'), /^RefusedError: refusing to promote k-b: 1 of 2 replicas do not verify/)
  })

  it('refuses bad URLs and selectors as usage errors', () => {
    assert.throws(() => createReplicaFleet({ urls: ['not a url'] }), UsageError)
    assert.throws(() => createReplicaFleet({ urls: ['ftp://x'] }), UsageError)
    assert.throws(() => createPrometheusFleet({ url: 'http://p:9090', selector: 'job="x"} or vector(1) or up{' }), UsageError)
    assert.throws(() => createPrometheusFleet({ url: 'http://p:9090', selector: ' ' }), UsageError)
  })

  it('attack: a not_after that is no text (an object without toString, an array nested deep) is not the key list; the other replicas are still read', async () => {
    const view = await createReplicaFleet({ urls: [urls.good!, urls.objectNotAfter!, urls.nestedNotAfter!] }).read()
    assert.deepEqual(
      view.replicas.map((r) => [r.reachable, r.problem ?? 'has the keys']),
      [
        [true, 'has the keys'],
        [false, '/v1/keys answered something that is not the key list'],
        [false, '/v1/keys answered something that is not the key list'],
      ],
    )
  })

  it('attack: a kid outside the keyset grammar is not the key list; nothing of it reaches the terminal', async () => {
    const view = await createReplicaFleet({ urls: [urls.hostileKid!] }).read()
    const [r] = view.replicas
    assert.equal(r!.reachable, false)
    assert.equal(r!.problem, '/v1/keys answered something that is not the key list')
    assert.doesNotMatch(describeReplica(r!), /[\u0000-\u001f\u007f]/)
  })
})

describe('the Prometheus fleet: label values are foreign text', () => {
  let server: http.Server
  let url: string
  const ESC = '\u001b[2J'
  before(async () => {
    const target = { job: 'cbc-jwt', instance: `10.0.0.9:8000${ESC}`, pod: `cbc-jwt-x${ESC}` }
    const series: Record<string, unknown[]> = {
      up: [{ metric: { __name__: 'up', ...target }, value: [0, '1'] }],
      cbc_jwt_key_info: [
        { metric: { __name__: 'cbc_jwt_key_info', ...target, issuer: 'cbc-omega2', kid: 'k-a', alg: 'ES256', status: 'current' }, value: [0, '1'] },
        { metric: { __name__: 'cbc_jwt_key_info', ...target, issuer: 'cbc-omega2', kid: `k-b${ESC}`, alg: 'ES256', status: 'staged' }, value: [0, '1'] },
      ],
    }
    server = http.createServer((req, res) => {
      const metric = /^(\w+)\{/.exec(new URL(req.url!, 'http://x').searchParams.get('query')!)![1]!
      res.writeHead(200).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: series[metric] ?? [] } }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  after(() => server.close())

  it('attack: a kid label outside the keyset grammar is no key; a target name is escaped; the refusal prints neither raw', async () => {
    const view = await createPrometheusFleet({ url }).read()
    const [r] = view.replicas
    assert.deepEqual([...r!.keys.keys()], ['k-a'])
    await assert.rejects(requireKeyEverywhere(createPrometheusFleet({ url }), 'k-b', 'promote'), (err: unknown) => {
      assert.ok(err instanceof RefusedError)
      assert.doesNotMatch(err.message, /[\u0000-\u001f\u007f]/)
      assert.match(err.message, /cbc-jwt-x\\x1b\[2J \(10\.0\.0\.9:8000\\x1b\[2J\) \(has k-a current\)/)
      return true
    })
  })
})
