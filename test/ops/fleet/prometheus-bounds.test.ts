/**
 * A Prometheus that answers its headers and then stalls, or trickles its body a byte at a time,
 * or sends more than any fleet's worth of series: every query has a deadline from connecting to
 * the last byte and a size cap, and each of these is a refusal that says so — nothing about the
 * replicas is taken from it. Real loopback servers.
 */
import assert from 'node:assert/strict'
import http from 'node:http'
import { after, before, describe, it } from 'node:test'
import { RefusedError } from '../../../src/lib/errors.js'
import { createPrometheusFleet } from '../../../src/ops/fleet/prometheus.js'

const UP = JSON.stringify({
  status: 'success',
  data: { resultType: 'vector', result: [{ metric: { __name__: 'up', job: 'cbc-jwt', instance: '10.0.0.1:8000' }, value: [0, '1'] }] },
})

describe('the Prometheus fleet: a deadline and a size cap on every query', () => {
  let server: http.Server
  let url: string
  const timers = new Set<NodeJS.Timeout>()
  before(async () => {
    server = http.createServer((req, res) => {
      const path = new URL(req.url!, 'http://x').pathname
      if (path === '/stall/api/v1/query') {
        // Headers and the first bytes of the answer, then nothing.
        res.writeHead(200, { 'content-type': 'application/json' })
        res.write(UP.slice(0, 10))
        return
      }
      if (path === '/trickle/api/v1/query') {
        // One byte every 20 ms: never idle for long, never done within the deadline.
        res.writeHead(200, { 'content-type': 'application/json' })
        let i = 0
        const timer = setInterval(() => {
          if (i >= UP.length) {
            clearInterval(timer)
            res.end()
          } else res.write(UP[i++]!)
        }, 20)
        timers.add(timer)
        res.on('close', () => clearInterval(timer))
        return
      }
      if (path === '/declared-huge/api/v1/query') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(16 * 1024 * 1024 + 1) })
        res.write(UP)
        return
      }
      if (path === '/streamed-huge/api/v1/query') {
        // Valid JSON all along (a result padded with blanks), one byte over the cap, chunked.
        res.writeHead(200, { 'content-type': 'application/json' })
        const pad = Buffer.alloc(1024 * 1024, ' ')
        res.write(UP.slice(0, -1))
        for (let i = 0; i < 16; i++) res.write(pad)
        res.end('}')
        return
      }
      if (path === '/unavailable/api/v1/query') {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'error', errorType: 'unavailable', error: 'too many queries' }))
        return
      }
      if (path === '/not-200/api/v1/query') {
        // A proxy's error page in front of a cached answer: the series are not an answer of this moment.
        res.writeHead(502, { 'content-type': 'application/json' }).end(UP)
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(UP)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  after(() => {
    for (const t of timers) clearInterval(t)
    server.closeAllConnections()
    server.close()
  })

  const refusal = async (path: string, timeoutMs: number, read: { timeoutMs?: number } = {}): Promise<{ message: string; took: number }> => {
    const started = performance.now()
    let message = ''
    await assert.rejects(createPrometheusFleet({ url: `${url}${path}`, timeoutMs }).read(read), (err: Error) => {
      assert.ok(err instanceof RefusedError, `${err.name}: ${err.message}`)
      message = err.message
      return true
    })
    return { message, took: performance.now() - started }
  }

  it('an answer whose body stalls after the headers times out at the deadline, saying so', { timeout: 10_000 }, async () => {
    const { message, took } = await refusal('/stall', 300)
    assert.match(
      message,
      /^cannot ask Prometheus http:\/\/127\.0\.0\.1:\d+\/stall \{job="cbc-jwt"\}: no answer within 300 ms; nothing can be known about the replicas$/,
    )
    assert.ok(took >= 300 && took < 5000, `a 300 ms deadline took ${took.toFixed(0)} ms`)
  })

  it('a body trickled a byte at a time is held to the same deadline: it counts to the last byte, not between bytes', { timeout: 10_000 }, async () => {
    const { message, took } = await refusal('/trickle', 300)
    assert.match(message, /\/trickle \{job="cbc-jwt"\}: no answer within 300 ms; nothing can be known about the replicas$/)
    assert.ok(took >= 300 && took < 5000, `a 300 ms deadline took ${took.toFixed(0)} ms`)
  })

  it("a shorter deadline asked of a read (what is left of a wait) wins over the fleet's own", { timeout: 10_000 }, async () => {
    const { message, took } = await refusal('/stall', 60_000, { timeoutMs: 200 })
    assert.match(message, /no answer within 200 ms/)
    assert.ok(took < 5000, `took ${took.toFixed(0)} ms`)
    // ...and a longer one never stretches it.
    assert.match((await refusal('/stall', 200, { timeoutMs: 60_000 })).message, /no answer within 200 ms/)
  })

  it('Prometheus failing (an error other than a bad query), or a series under a status other than 200: a refusal, not bad usage', async () => {
    for (const [path, status] of [
      ['/unavailable', 503],
      ['/not-200', 502],
    ] as const) {
      const { message } = await refusal(path, 5000)
      assert.match(message, new RegExp(`${path} \\{job="cbc-jwt"\\} answered HTTP ${status} without a query result; nothing can be known about the replicas$`))
    }
  })

  it('an answer over 16 MiB, declared or streamed, is refused as too large', { timeout: 10_000 }, async () => {
    for (const path of ['/declared-huge', '/streamed-huge']) {
      const { message } = await refusal(path, 5000)
      assert.match(message, new RegExp(`${path} \\{job="cbc-jwt"\\}: answer larger than 16777216 bytes; nothing can be known about the replicas$`))
    }
    // The same series without the padding: the fleet is seen.
    const view = await createPrometheusFleet({ url, timeoutMs: 5000 }).read()
    assert.deepEqual(
      view.replicas.map((r) => [r.name, r.reachable]),
      [['10.0.0.1:8000', true]],
    )
  })
})

describe('the Prometheus fleet: a sample that is no finite number is unknown', () => {
  let server: http.Server
  let url: string
  before(async () => {
    const target = { job: 'cbc-jwt', instance: '10.0.0.1:8000' }
    server = http.createServer((req, res) => {
      const query = new URL(req.url!, 'http://x').searchParams.get('query')!
      const value = query.startsWith('up{') ? '1' : query.startsWith('cbc_jwt_revoked_before') ? '+Inf' : 'NaN'
      const metric = query.startsWith('cbc_jwt_key_info{') ? { ...target, issuer: 'cbc-omega2', kid: 'k-new', alg: 'ES256', status: 'current' } : target
      res.writeHead(200).end(JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [{ metric, value: [0, value] }] } }))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  after(() => server.close())

  it('attack: revoked_before +Inf and a newest rule NaN never stand for "at least the new one"', async () => {
    const [replica] = (await createPrometheusFleet({ url }).read()).replicas
    assert.equal(replica!.reachable, true)
    assert.equal(replica!.revokedBefore, undefined)
    assert.equal(replica!.revocationsNewest, undefined)
  })
})

describe('the Prometheus fleet: answers shaped as no Prometheus shapes them', () => {
  let server: http.Server
  let url: string
  const vector = (result: unknown) => JSON.stringify({ status: 'success', data: { resultType: 'vector', result } })
  before(async () => {
    server = http.createServer((req, res) => {
      const u = new URL(req.url!, 'http://x')
      const query = u.searchParams.get('query')!
      if (u.pathname === '/not-a-list/api/v1/query') {
        res.writeHead(200).end(vector({ length: 1 }))
        return
      }
      if (u.pathname === '/matrix/api/v1/query') {
        // Samples shaped as a vector's under another result type: not the answer to an instant query.
        const result = [{ metric: { __name__: 'up', job: 'cbc-jwt', instance: '10.0.0.1:8000' }, value: [0, '1'] }]
        res.writeHead(200).end(JSON.stringify({ status: 'success', data: { resultType: 'matrix', result } }))
        return
      }
      // Two targets listed out of order, one key_info series at 0, labels in another order than up's,
      // and entries that are no sample at all between them.
      const a = { job: 'cbc-jwt', instance: '10.0.0.2:8000', zone: 'b' }
      const b = { job: 'cbc-jwt', instance: '10.0.0.1:8000', zone: 'a' }
      if (query.startsWith('up{')) {
        const noValue = { metric: { __name__: 'up', job: 'cbc-jwt', instance: '10.0.0.3:8000' } }
        res
          .writeHead(200)
          .end(vector([null, { metric: { __name__: 'up', ...a }, value: [0, '1'] }, 'up', noValue, { metric: { __name__: 'up', ...b }, value: [0, '1'] }]))
        return
      }
      if (query.startsWith('cbc_jwt_key_info{')) {
        const key = (t: typeof a, kid: string, value: string) => ({
          metric: { status: 'current', kid, alg: 'ES256', issuer: 'cbc-omega2', zone: t.zone, instance: t.instance, job: t.job, __name__: 'cbc_jwt_key_info' },
          value: [0, value],
        })
        res.writeHead(200).end(vector([{ metric: 'x', value: [0, '1'] }, key(a, 'k-a', '1'), key(b, 'k-b', '0')]))
        return
      }
      res.writeHead(200).end(vector([]))
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  })
  after(() => server.close())

  it('a result that is no list, or of another type than an instant vector, is a refusal, never a TypeError', async () => {
    for (const path of ['/not-a-list', '/matrix']) {
      await assert.rejects(createPrometheusFleet({ url: `${url}${path}` }).read(), (err: Error) => {
        assert.ok(err instanceof RefusedError, `${err.name}: ${err.message}`)
        assert.match(err.message, /answered HTTP 200 without a query result/)
        return true
      })
    }
  })

  it('entries that are no sample are left out; a series at 0 is no key; labels match in any order; replicas in name order', async () => {
    const view = await createPrometheusFleet({ url }).read()
    assert.deepEqual(
      view.replicas.map((r) => [r.name, r.reachable, [...r.keys]]),
      [
        ['10.0.0.1:8000', true, []],
        ['10.0.0.2:8000', true, [['k-a', 'current']]],
      ],
    )
  })
})
