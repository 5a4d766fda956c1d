import assert from 'node:assert/strict'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { ApiTransportError, createKubernetesApi, type KubernetesApi } from '../../../../src/lib/backends/kubernetes/api.js'
import { withDeadline } from '../../../../src/lib/deadline.js'

const event = '{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"1"}}}'

/** What the API server double answers, by path. */
function answer(req: http.IncomingMessage, res: http.ServerResponse): void {
  switch (req.url) {
    case '/silent':
      return // never answers
    case '/headers-then-silence':
      res.writeHead(200, { 'content-type': 'application/json' }).write('{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"1"}}}\n')
      return
    case '/huge':
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Secret', data: { k: 'x'.repeat(4096) } }))
      return
    case '/moved':
      res.writeHead(302, { location: '/elsewhere' }).end()
      return
    case '/unauthorized':
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 401, message: 'Unauthorized' }))
      return
    case '/refused-huge':
      res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 403, message: 'x'.repeat(4096) }))
      return
    case '/blank-lines-and-exact':
      // Keep-alive blank lines (some proxies send them), then a line of exactly the cap.
      res.writeHead(200).end(`\n\r\n${event.padEnd(1024, ' ')}\n`)
      return
    case '/over-cap-in-one-chunk':
      res.writeHead(200).end(`${event.padEnd(1025, ' ')}\n`)
      return
    case '/over-cap-never-ending':
      res.writeHead(200).write(event.padEnd(2048, ' ')) // no newline, ever
      return
    case '/slow-but-alive': {
      res.writeHead(200)
      let sent = 0
      const tick = setInterval(() => {
        if (++sent > 6) {
          clearInterval(tick)
          res.end()
        } else res.write(`${event}\n`)
      }, 150)
      res.on('close', () => clearInterval(tick))
      return
    }
    default:
      res.writeHead(404).end()
  }
}

async function rejection(p: Promise<unknown>): Promise<ApiTransportError> {
  const err = await withDeadline(
    p.then(
      () => assert.fail('resolved'),
      (e: unknown) => e,
    ),
    10_000,
    () => new Error('neither resolved nor rejected'),
  )
  assert.ok(err instanceof ApiTransportError, `expected an ApiTransportError, got ${String(err)}`)
  return err
}

describe('the Kubernetes API client: bounded requests and watch streams', () => {
  const server = http.createServer(answer)
  let api: KubernetesApi
  let refusedTokens = 0
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    api = createKubernetesApi(
      {
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        skipVerify: false,
        source: 'test',
        token: () => 'sa-token',
        tokenRefused: () => void refusedTokens++,
      },
      { timeoutMs: 300, maxResponseBytes: 1024 },
    )
  })
  after(async () => {
    api.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  // The backend error reasons are what the metrics and the runbook tell apart.
  it('a request not answered in time is `timeout`, an answer over the cap `bad_response`, a redirect its own status', async () => {
    const slow = await rejection(api.request('GET', '/silent'))
    assert.equal(slow.reason, 'timeout')
    const huge = await rejection(api.request('GET', '/huge'))
    assert.deepEqual([huge.reason, huge.message], ['bad_response', 'answer larger than 1024 bytes'])
    assert.deepEqual(await api.request('GET', '/moved'), { status: 302, json: undefined })
  })

  it('a watch that goes silent past idleMs is dropped as `timeout`: a dead connection is never watched for ever', async () => {
    const lines: string[] = []
    const err = await rejection(api.stream('/headers-then-silence', (line) => void lines.push(line), { idleMs: 200, maxLineBytes: 1024 }))
    assert.deepEqual([err.reason, err.message], ['timeout', 'no byte from the watch within 200 ms'])
    assert.equal(lines.length, 1, 'the line before the silence was delivered')
  })

  it('each byte resets the idle limit: a watch that sends a line every 150 ms lives past a 400 ms idle limit', async () => {
    const lines: string[] = []
    assert.deepEqual(await api.stream('/slow-but-alive', (line) => void lines.push(line), { idleMs: 400, maxLineBytes: 1024 }), {
      status: 200,
      ended: 'closed',
    })
    assert.equal(lines.length, 6)
  })

  it('event lines: blank ones skipped, one of exactly maxLineBytes taken, one byte more refused, in one chunk or never ending', async () => {
    const lines: string[] = []
    const end = await api.stream('/blank-lines-and-exact', (line) => void lines.push(line), { idleMs: 60_000, maxLineBytes: 1024 })
    assert.deepEqual(end, { status: 200, ended: 'closed' })
    assert.deepEqual(
      lines.map((l) => l.length),
      [1024],
    )
    for (const path of ['/over-cap-in-one-chunk', '/over-cap-never-ending']) {
      const err = await rejection(api.stream(path, () => undefined, { idleMs: 60_000, maxLineBytes: 1024 }))
      assert.deepEqual([err.reason, err.message], ['bad_response', 'a watch event larger than 1024 bytes'], path)
    }
  })

  it('a watch started with a signal already aborted (closed meanwhile) ends at once', async () => {
    const err = await rejection(api.stream('/headers-then-silence', () => undefined, { idleMs: 60_000, maxLineBytes: 1024, signal: AbortSignal.abort() }))
    assert.deepEqual([err.reason, err.message], ['unreachable', 'watch closed'])
  })

  it('a refused watch: a 401 asks for a new token; a Status over the cap is not kept', async () => {
    const before = refusedTokens
    const unauthorized = await api.stream('/unauthorized', () => undefined, { idleMs: 60_000, maxLineBytes: 1024 })
    assert.deepEqual(unauthorized, { ended: 'refused', status: 401, json: { kind: 'Status', code: 401, message: 'Unauthorized' } })
    assert.equal(refusedTokens, before + 1)
    const huge = await api.stream('/refused-huge', () => undefined, { idleMs: 60_000, maxLineBytes: 1024 })
    assert.deepEqual(huge, { ended: 'refused', status: 403, json: undefined })
  })
})
