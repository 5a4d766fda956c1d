// Several --selector values: every target any of them matches is a replica (once, however many
// match it), and each must match a scraped target — a selector that matches nothing refuses
// instead of shrinking the fleet. The real Prometheus runs in test/e2e/projection-fleet-rotation.test.ts;
// here a loopback server answers the three instant queries per selector from a fixed table.
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, it } from 'node:test'
import { RefusedError, UsageError } from '../../../src/lib/errors.js'
import { requireKeyEverywhere } from '../../../src/ops/fleet/gate.js'
import { createPrometheusFleet } from '../../../src/ops/fleet/prometheus.js'

const target = (ns: string, instance: string) => ({ job: 'cbc-jwt', namespace: ns, instance })
const TARGETS = [target('cbc', '10.0.0.1:8000'), target('cbc', '10.0.0.2:8000'), target('orders', '10.1.0.1:8000')]
/**
 * The staged key k-new is on every replica but the orders one; that one trusts an issuer whose
 * key has the same kid (`status="trusted"`): not the keyset's, so it must not count as k-new.
 */
const KEYS: Record<string, string[]> = { '10.0.0.1:8000': ['k-new'], '10.0.0.2:8000': ['k-new'], '10.1.0.1:8000': [] }

/** The targets a selector of `job="cbc-jwt"` and an optional `namespace="…"` matches. */
function matching(selector: string) {
  const ns = /namespace="([^"]*)"/.exec(selector)?.[1]
  return TARGETS.filter((t) => ns === undefined || t.namespace === ns)
}

function answer(promql: string): unknown[] {
  const m = /^(\w+)\{(.*)\}$/.exec(promql)!
  const [metric, selector] = [m[1]!, m[2]!]
  const targets = matching(selector)
  if (metric === 'up') return targets.map((t) => ({ metric: { __name__: 'up', ...t }, value: [0, '1'] }))
  if (metric === 'cbc_jwt_key_info') {
    return targets.flatMap((t) =>
      ['k-old', ...KEYS[t.instance]!]
        .map((kid) => ({
          metric: { __name__: metric, ...t, issuer: 'cbc-omega2', kid, alg: 'ES256', status: kid === 'k-old' ? 'current' : 'staged' },
          value: [0, '1'],
        }))
        .concat(
          t.namespace === 'orders'
            ? [{ metric: { __name__: metric, ...t, issuer: 'https://idp.example.com', kid: 'k-new', alg: 'RS256', status: 'trusted' }, value: [0, '1'] }]
            : [],
        ),
    )
  }
  return targets.map((t) => ({ metric: { __name__: metric, ...t }, value: [0, '0'] }))
}

describe('the Prometheus fleet with several selectors', () => {
  let server: http.Server
  let url: string
  const asked: string[] = []
  before(async () => {
    server = http.createServer((req, res) => {
      const query = new URL(req.url!, 'http://x').searchParams.get('query')!
      asked.push(query)
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: answer(query) } }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  after(() => server.close())

  const CBC = 'job="cbc-jwt",namespace="cbc"'
  const ORDERS = 'job="cbc-jwt",namespace="orders"'

  it('one selector per namespace: the replicas of both, each asked for by its own selector', async () => {
    const view = await createPrometheusFleet({ url, selector: [CBC, ORDERS] }).read()
    assert.deepEqual(
      view.replicas.map((r) => r.name),
      ['10.0.0.1:8000', '10.0.0.2:8000', '10.1.0.1:8000'],
    )
    assert.equal(view.source, `Prometheus ${url} {${CBC}} + {${ORDERS}}`)
    assert.ok(asked.includes(`up{${CBC}}`) && asked.includes(`up{${ORDERS}}`))
  })

  it('the gate refuses while a replica of either namespace lacks the key; gated on cbc alone it would have passed', async () => {
    await assert.rejects(
      requireKeyEverywhere(createPrometheusFleet({ url, selector: [CBC, ORDERS] }), 'k-new', 'promote'),
      (err: Error) => err instanceof RefusedError && /1 of 3 replicas do not verify with it yet: 10\.1\.0\.1:8000 \(has k-old current\)/.test(err.message),
    )
    assert.match(await requireKeyEverywhere(createPrometheusFleet({ url, selector: [CBC] }), 'k-new', 'promote'), /every replica verifies with k-new \(2 seen/)
  })

  it('a target two selectors match is one replica', async () => {
    const view = await createPrometheusFleet({ url, selector: [CBC, 'job="cbc-jwt"'] }).read()
    assert.equal(view.replicas.length, 3)
  })

  it('a selector that matches no target refuses, naming it, even when the others match', async () => {
    const payments = 'job="cbc-jwt",namespace="payments"'
    await assert.rejects(
      createPrometheusFleet({ url, selector: [CBC, payments] }).read(),
      (err: Error) => err instanceof RefusedError && err.message.includes(`{${payments}}: the selector matches no scraped target`),
    )
  })

  it('each selector is checked: braces in any of them are a usage error', () => {
    assert.throws(() => createPrometheusFleet({ url, selector: [CBC, 'job="x"} or vector(1) or up{'] }), UsageError)
    assert.throws(() => createPrometheusFleet({ url, selector: [] }), UsageError)
  })
})

/**
 * Prometheus answers with foreign text: label values any scraped target or relabeling
 * produced, and its own error messages. A refusal printed on the operator's terminal carries
 * them escaped, never as control sequences.
 */
describe('the Prometheus fleet: what Prometheus answers reaches a message escaped', () => {
  let server: http.Server
  let url: string
  const HOSTILE = 'k-\u001b]0;pwned\u0007\u009b2J'
  before(async () => {
    server = http.createServer((req, res) => {
      const query = new URL(req.url!, 'http://x').searchParams.get('query')!
      if (query.includes('namespace="bad"')) {
        res
          .writeHead(400, { 'content-type': 'application/json' })
          .end(JSON.stringify({ status: 'error', errorType: 'bad_data', error: `parse error\u001b[2J\u202e` }))
        return
      }
      // What no Prometheus writes: an error, a label value and a sample value that are not text,
      // made so that turning them into text throws.
      const notText = JSON.parse('{"toString":1,"valueOf":1}')
      if (query.includes('namespace="error-not-text"')) {
        res.writeHead(400).end(JSON.stringify({ status: 'error', errorType: 'bad_data', error: notText }))
        return
      }
      if (query.includes('namespace="value-not-text"')) {
        const result = query.startsWith('up{')
          ? [
              { metric: { __name__: 'up', job: 'cbc-jwt', instance: notText }, value: [0, '1'] },
              { metric: { __name__: 'up', job: 'cbc-jwt', instance: '10.0.0.8:8000' }, value: [0, notText] },
            ]
          : []
        res.writeHead(200).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }))
        return
      }
      if (query.includes('namespace="label-name"')) {
        // A target with neither pod nor instance is named by its labels, names included.
        const result = [{ metric: { __name__: 'x', job: 'cbc-jwt', 'zone\u009b2J\u202e': 'a' }, value: [0, '1'] }]
        res.writeHead(200).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }))
        return
      }
      const t = { job: 'cbc-jwt', instance: '10.0.0.9:8000', pod: `cbc-jwt-\u001b[8mx` }
      const result = query.startsWith('up{')
        ? [{ metric: { __name__: 'up', ...t }, value: [0, '1'] }]
        : query.startsWith('cbc_jwt_key_info{')
          ? [{ metric: { __name__: 'cbc_jwt_key_info', ...t, issuer: 'cbc-omega2', kid: HOSTILE, alg: 'ES256', status: 'current' }, value: [0, '1'] }]
          : [{ metric: { __name__: 'x', ...t }, value: [0, '0'] }]
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result } }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  after(() => server.close())

  const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202e]/

  it("a target's pod label is escaped in the refusal, once; a kid outside the keyset grammar is no key", async () => {
    await assert.rejects(requireKeyEverywhere(createPrometheusFleet({ url }), 'k-new', 'promote'), (err: Error) => {
      assert.ok(err instanceof RefusedError)
      assert.doesNotMatch(err.message, CONTROL, JSON.stringify(err.message))
      assert.ok(err.message.includes('cbc-jwt-\\x1b[8mx (10.0.0.9:8000) (has no key)'), err.message)
      return true
    })
  })

  it('attack: a label name made of control characters reaches the refusal escaped', async () => {
    await assert.rejects(
      requireKeyEverywhere(createPrometheusFleet({ url, selector: 'job="cbc-jwt",namespace="label-name"' }), 'k-new', 'promote'),
      (err: Error) => {
        assert.ok(err instanceof RefusedError)
        assert.doesNotMatch(err.message, CONTROL, JSON.stringify(err.message))
        assert.ok(err.message.includes('zone\\\\x9b2J\\\\u202e'), err.message)
        return true
      },
    )
  })

  it('attack: an error that is not text is a clear refusal, never a TypeError', async () => {
    await assert.rejects(createPrometheusFleet({ url, selector: 'job="cbc-jwt",namespace="error-not-text"' }).read(), (err: Error) => {
      assert.ok(err instanceof UsageError, `${err.name}: ${err.message}`)
      assert.match(err.message, /^Prometheus rejected the query for --selector job="cbc-jwt",namespace="error-not-text": /)
      return true
    })
  })

  it('attack: a label value that is not text leaves its series out; a sample value that is not text is no 1 (the target is down)', async () => {
    const view = await createPrometheusFleet({ url, selector: 'job="cbc-jwt",namespace="value-not-text"' }).read()
    assert.deepEqual(
      view.replicas.map((r) => [r.name, r.reachable]),
      [['10.0.0.8:8000', false]],
    )
  })

  it("Prometheus's own error message is escaped", async () => {
    await assert.rejects(createPrometheusFleet({ url, selector: 'job="cbc-jwt",namespace="bad"' }).read(), (err: Error) => {
      assert.ok(err instanceof UsageError)
      assert.doesNotMatch(err.message, CONTROL, JSON.stringify(err.message))
      assert.match(err.message, /parse error\\x1b\[2J\\u202e/)
      return true
    })
  })
})
