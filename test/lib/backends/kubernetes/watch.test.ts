import assert from 'node:assert/strict'
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, afterEach, before, beforeEach, describe, it } from 'node:test'
import { ApiTransportError, createKubernetesApi, type KubernetesApi } from '../../../../src/lib/backends/kubernetes/api.js'
import { createKubernetesBackend, kubernetesOptionsFromEnv, type KubernetesKeysetBackend } from '../../../../src/lib/backends/kubernetes/index.js'
import { startSecretWatch } from '../../../../src/lib/backends/kubernetes/watch.js'
import { createKeyring, type Keyring } from '../../../../src/lib/keyring/keyring.js'
import type { BackendErrorReason } from '../../../../src/lib/reasons.js'
import { serializeKeyset } from '../../../../src/lib/keyset/serialize.js'
import { startKubeDouble, type KubeDouble } from '../../../support/kube-double.js'
import { makeKey, makeKeyset } from '../../../support/keys.js'
import { waitFor } from '../../../support/wait.js'

const NS = 'cbc'
const SECRET = 'cbc-secrets'

/** A watch over real HTTP, against `server` (not yet listening) playing the API server. */
async function watchOver(server: http.Server, backoff: { backoffMs: number; random: number }) {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const api = createKubernetesApi(
    { server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipVerify: false, source: 'test' },
    { timeoutMs: 5000, maxResponseBytes: 65_536 },
  )
  const failures: BackendErrorReason[] = []
  const watch = startSecretWatch({
    api,
    namespace: NS,
    name: SECRET,
    onChange() {},
    onFailure: (reason) => void failures.push(reason),
    logger: { info() {}, warn() {} },
    location: 'kubernetes:cbc/cbc-secrets#jwt-keyset',
    maxEventBytes: 65_536,
    backoffMinMs: backoff.backoffMs,
    backoffMaxMs: backoff.backoffMs,
    random: () => backoff.random,
  })
  const close = async () => {
    watch.close()
    api.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
  return { watch, failures, close }
}
const keysetWith = (kid: string) => serializeKeyset(makeKeyset([makeKey('ES256', kid)]) as never)
const silent = { info() {}, warn() {}, error() {} }

describe('Kubernetes backend in the service: list + watch of the one Secret (against the API test double)', () => {
  let double: KubeDouble
  let dir: string
  let env: NodeJS.ProcessEnv
  let backend: KubernetesKeysetBackend
  let keyring: Keyring
  let errors: BackendErrorReason[]
  const current = () => keyring.keyset()?.current.kid
  const write = (kid: string) => double.setSecret(NS, SECRET, { 'jwt-keyset': keysetWith(kid) })
  const lists = () => double.calls.filter((c) => c.verb === 'list').length

  before(async () => {
    double = await startKubeDouble()
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-kube-watch-'))
    env = { KUBECONFIG: double.writeKubeconfig(path.join(dir, 'kubeconfig'), { namespace: NS }), HOME: dir }
  })
  after(async () => {
    await double.close()
    fs.rmSync(dir, { recursive: true, force: true })
  })
  beforeEach(async () => {
    double.outage = false
    double.restrictNames = undefined
    write('k-watch-0')
    errors = []
    // The interval read is an hour away: whatever arrives below arrived through the watch.
    backend = createKubernetesBackend(kubernetesOptionsFromEnv(env), { env, watch: { timeoutSeconds: 300, backoffMinMs: 20, backoffMaxMs: 100 } })
    keyring = createKeyring({
      backend,
      logger: silent,
      refreshIntervalMs: 3_600_000,
      unknownKidCooldownMs: 0,
      events: { onBackendError: (r) => errors.push(r) },
    })
    await waitFor(() => double.watches.open() === 0, { what: 'the previous test’s watch to be gone' })
    await keyring.start()
    assert.equal(current(), 'k-watch-0')
    await waitFor(() => double.watches.open() === 1, { what: 'the watch to open' })
  })
  afterEach(async () => {
    await keyring.close()
    await waitFor(() => double.watches.open() === 0, { what: 'the watch to end with the keyring' })
  })

  it('lists with a field selector on metadata.name, then watches from the list resourceVersion; a change is in force without any interval read', async () => {
    const watch = double.watches.requests.at(-1)!
    assert.equal(watch.name, SECRET, 'the watch selects the one Secret')
    assert.match(String(watch.rv), /^\d+$/, 'resumes from the listed resourceVersion, not from "now"')
    write('k-watch-1')
    await waitFor(() => current() === 'k-watch-1', { what: 'the watched change' })
    assert.deepEqual(errors, [])
  })

  it('least RBAC: get/list/watch restricted to resourceNames [cbc-secrets] is enough (list and watch carry the field selector)', async () => {
    double.restrictNames = new Set([SECRET])
    double.watches.disconnectAll()
    await waitFor(() => double.watches.open() === 1, { what: 'the watch to reopen under resourceNames' })
    write('k-watch-rbac')
    await waitFor(() => current() === 'k-watch-rbac', { what: 'the change under least RBAC' })
    assert.equal(double.calls.filter((c) => c.status === 403).length, 0, 'no call the restricted Role refuses')
  })

  it('a Role without list and watch: every refused watch is counted forbidden, though each read that follows succeeds', async () => {
    // The Role lost `list` and `watch` (kept `get`): reads work, so no read ever fails; the watch
    // is refused on every attempt and changes arrive only with the interval read (an hour here).
    // Without a count, containment loses its second silently and no alert can say so.
    double.deny.add('list').add('watch')
    try {
      double.watches.disconnectAll()
      await waitFor(() => errors.includes('forbidden'), { what: 'the refused watch counted forbidden' })
      assert.equal(current(), 'k-watch-0', 'the last good keyset stays in force')
      assert.ok(keyring.ready())
    } finally {
      double.deny.clear()
    }
  })

  it('a disconnect resumes from the last resourceVersion (no relist) and delivers what changed while cut', async () => {
    const listed = lists()
    double.watches.disconnectAll()
    write('k-watch-missed') // written while no watch is open
    await waitFor(() => current() === 'k-watch-missed', { what: 'the change made during the disconnect' })
    const resumed = double.watches.requests.at(-1)!
    assert.notEqual(resumed.rv, null)
    assert.equal(lists(), listed, 'resumed by resourceVersion, not relisted')
    assert.deepEqual(errors, [], 'a disconnect is routine, not a backend error')
  })

  it('bookmarks move the resume point: after one, a reconnect asks from the bookmark resourceVersion', async () => {
    double.setSecret(NS, 'unrelated', { x: '1' }) // moves the cluster resourceVersion, not our Secret
    const bookmarkRv = double.secret(NS, 'unrelated')!.metadata.resourceVersion
    // Each round: a bookmark, then a cut. A round whose cut overtook its bookmark resumes from
    // the older resourceVersion; the next round tries again.
    await waitFor(
      async () => {
        await double.watches.bookmark()
        double.watches.disconnectAll()
        await waitFor(() => double.watches.open() === 1, { what: 'the watch to reopen' })
        return double.watches.requests.at(-1)!.rv === bookmarkRv
      },
      { what: 'a watch resumed from the bookmark' },
    )
  })

  it('410 Gone: an expired resourceVersion makes it list again; changes keep arriving', async () => {
    const listed = lists()
    double.watches.compact()
    double.watches.expireAll() // the open watch gets ERROR 410; any resume from its RV would too
    await waitFor(() => lists() > listed && double.watches.open() === 1, { what: 'a relist and a new watch' })
    write('k-watch-after-410')
    await waitFor(() => current() === 'k-watch-after-410', { what: 'a change after the relist' })
    assert.deepEqual(errors, [], 'a 410 is routine, not a backend error')
  })

  it('a resume from a compacted resourceVersion gets 410 and lists again', async () => {
    const listed = lists()
    double.setSecret(NS, 'unrelated', { x: '2' }) // the cluster moves on; our watch sees nothing of it
    double.watches.compact()
    double.watches.disconnectAll()
    await waitFor(() => lists() > listed && double.watches.open() === 1, { what: 'the relist after a 410 on resume' })
    write('k-watch-compacted')
    await waitFor(() => current() === 'k-watch-compacted', { what: 'a change after the relist' })
  })

  it('timeoutSeconds: the server ends the stream; the watch resumes from its resourceVersion', async () => {
    await keyring.close()
    backend = createKubernetesBackend(kubernetesOptionsFromEnv(env), { env, watch: { timeoutSeconds: 1 } })
    keyring = createKeyring({ backend, logger: silent, refreshIntervalMs: 3_600_000 })
    await keyring.start()
    const before = double.watches.requests.length
    await waitFor(() => double.watches.requests.length >= before + 2, { what: 'a second watch after the server ended the first', timeoutMs: 10_000 })
    assert.ok(double.watches.requests.at(-1)!.rv, 'the resumed watch names a resourceVersion')
    write('k-watch-after-timeout')
    await waitFor(() => current() === 'k-watch-after-timeout', { what: 'a change on the resumed watch' })
  })

  it('the API unreachable: the last good keyset stays, each failed read is counted unreachable; back, it catches up', async () => {
    double.outage = true
    double.watches.disconnectAll() // the open watch breaks too; its reconnects are cut
    await waitFor(() => errors.includes('unreachable'), { what: 'a counted backend error' })
    assert.equal(current(), 'k-watch-0', 'the last good keyset stays in force')
    assert.ok(keyring.ready())
    write('k-watch-during-outage')
    double.outage = false
    await waitFor(() => current() === 'k-watch-during-outage', { what: 'the change made during the outage', timeoutMs: 10_000 })
  })

  it('the Secret deleted: not_found counted, the last good keyset stays; recreated, it loads', async () => {
    double.deleteSecret(NS, SECRET)
    await waitFor(() => errors.includes('not_found'), { what: 'not_found counted' })
    assert.equal(current(), 'k-watch-0')
    write('k-watch-recreated')
    await waitFor(() => current() === 'k-watch-recreated', { what: 'the recreated Secret' })
  })

  it('attack: a Status message echoing the bearer token reaches the watch_failed log redacted', async () => {
    // A proxy or webhook in front of the API writes Status messages too; the backend's own errors
    // redact the token from them, and so must the watch's log line.
    const warned: string[] = []
    const logger = { info() {}, warn: (obj: object) => void warned.push(JSON.stringify(obj)) }
    double.statusMessageSuffix = ` echoed ${double.token}`
    double.deny.add('list')
    const b = createKubernetesBackend(kubernetesOptionsFromEnv(env), { env, logger, watch: { backoffMinMs: 20, backoffMaxMs: 100 } })
    try {
      b.watch?.(() => {})
      await waitFor(() => warned.length >= 2, { what: 'the refused list to be logged' })
    } finally {
      await b.close()
      double.deny.clear()
      double.statusMessageSuffix = ''
    }
    assert.ok(
      warned.some((l) => l.includes('cannot list resource')),
      'a positive control: the Status message is in the log',
    )
    for (const line of warned) assert.ok(!line.includes(double.token), `the token is never logged: ${line}`)
  })

  it('the unknown-kid re-read asks the API (a GET), whatever the watch has delivered', async () => {
    const gets = double.calls.filter((c) => c.verb === 'get').length
    double.watches.disconnectAll() // and the watch cannot help: the change comes while it is down
    double.outage = true
    await waitFor(() => double.watches.open() === 0, { what: 'no open watch' })
    double.outage = false
    write('k-watch-unknown-kid')
    await keyring.refreshForUnknownKid()
    assert.equal(current(), 'k-watch-unknown-kid')
    assert.ok(double.calls.filter((c) => c.verb === 'get').length > gets, 'read through the API')
  })

  it('bounded: an event line larger than the cap is refused (the watch restarts), the keyset in force is kept', async () => {
    // 7 MiB, 9.3 MiB in base64: over the cap of twice the 4 MiB keyset limit plus 64 KiB.
    double.setSecret(NS, SECRET, { 'jwt-keyset': keysetWith('k-watch-0'), padding: 'x'.repeat(7 * 1024 * 1024) })
    // CPU-bound, not a wait for a timer: the double copies and sends 9.3 MiB and the watch
    // buffers 8 MiB before it refuses, seconds on a loaded 2-core machine (5 s was not enough at
    // load average 20). The interval read is an hour away: only the watch can have refused it.
    await waitFor(() => errors.length > 0, { timeoutMs: 60_000, what: 'the oversized Secret refused' })
    assert.equal(current(), 'k-watch-0')
    write('k-watch-after-big')
    await waitFor(() => current() === 'k-watch-after-big', { what: 'a normal change after the oversized one' })
  })
})

describe('the Secret watch against an API that answers oddly (a fake API)', () => {
  const expired = JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Expired', code: 410 } })

  /** Each watch request answers with the next script's lines (after a turn of the event loop); past the last, the last again. */
  /**
   * `refused`: the watch request answered with that status; `hang`: after its lines the stream
   * stays open until the watch is closed. `timeline` has every log line's event and each
   * `change` (a read the keyring would make), in order; `idles` each watch request's idle limit.
   */
  function fakeWatch(
    scripts: Array<{ lines: string[]; cut?: boolean; refused?: number; hang?: boolean }>,
    options: { backoffMs?: number; backoffMaxMs?: number; random?: number; listStatus?: number | undefined; listJson?: unknown } = {},
  ) {
    const lines: Array<Record<string, unknown>> = []
    const timeline: string[] = []
    const idles: number[] = []
    const failures: BackendErrorReason[] = []
    let lists = 0
    let streams = 0
    const api: KubernetesApi = {
      async request() {
        lists++
        if (options.listStatus) return { status: options.listStatus, json: { kind: 'Status', message: 'refused' } }
        if (options.listJson !== undefined) return { status: 200, json: options.listJson }
        return { status: 200, json: { kind: 'SecretList', metadata: { resourceVersion: String(100 + lists) } } }
      },
      async stream(_path, onLine, { idleMs, signal }) {
        idles.push(idleMs)
        const script = scripts[Math.min(streams++, scripts.length - 1)]!
        await new Promise((resolve) => setImmediate(resolve))
        if (script.refused) return { ended: 'refused', status: script.refused, json: { kind: 'Status', code: script.refused } }
        for (const line of script.lines) if (onLine(line) === 'stop') return { status: 200, ended: 'stopped' }
        if (script.hang) await new Promise((resolve) => signal?.addEventListener('abort', resolve, { once: true }))
        if (script.cut || script.hang) throw new ApiTransportError('unreachable', 'cut')
        return { status: 200, ended: 'closed' }
      },
      close() {},
    }
    const log = (obj: object) => {
      lines.push(obj as Record<string, unknown>)
      timeline.push(String((obj as { event?: unknown }).event))
    }
    const backoffMs = options.backoffMs ?? 1
    const watch = startSecretWatch({
      api,
      namespace: NS,
      name: SECRET,
      onChange: () => void timeline.push('change'),
      onFailure: (reason) => void failures.push(reason),
      logger: { info: log, warn: log },
      location: 'kubernetes:cbc/cbc-secrets#jwt-keyset',
      maxEventBytes: 65_536,
      backoffMinMs: backoffMs,
      backoffMaxMs: options.backoffMaxMs ?? backoffMs,
      random: () => options.random ?? 1,
    })
    return { watch, lines, timeline, idles, failures, lists: () => lists }
  }

  it('attack: a resourceVersion with a bidi override and 1000 characters reaches the log escaped and bounded', async () => {
    // Opaque to clients by the API's rules: whatever answers for the API server (a proxy) chooses it.
    // As long as a request can carry it back (longer is a malformed event: see below), it is resumed from.
    const hostile = `\u202e${'9'.repeat(1000)}`
    const modified = JSON.stringify({ type: 'MODIFIED', object: { metadata: { resourceVersion: hostile } } })
    const bookmark = JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '7' } } })
    const { watch, lines } = fakeWatch([{ lines: [modified], cut: true }, { lines: [bookmark, expired] }])
    try {
      await waitFor(() => lines.some((l) => l.event === 'watch_relist'), { what: 'the relist after the resumed watch' })
    } finally {
      watch.close()
    }
    const logged = lines.filter((l) => l.event === 'watch_resumed' || l.event === 'watch_relist').map((l) => String(l.resource_version))
    assert.ok(logged.length >= 2, 'a positive control: both lines carry the resourceVersion')
    assert.ok(logged[0]!.startsWith('\\u202e999'), `resumed from the hostile resourceVersion, escaped: ${logged[0]}`)
    for (const value of logged) {
      assert.ok(!value.includes('\u202e'), 'no raw bidi override')
      assert.ok(value.length < 200, `bounded (${value.length} characters)`)
    }
  })

  it('each failed attempt is reported with its bounded reason, and logged with it', async () => {
    const failing = JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'InternalError', code: 500 } })
    const cases: Array<{ scripts: Array<{ lines: string[]; cut?: boolean }>; reason: BackendErrorReason; list?: number }> = [
      { scripts: [{ lines: [failing] }], reason: 'server_error' },
      { scripts: [{ lines: [] }], reason: 'bad_response' },
      { scripts: [{ lines: ['not json'] }], reason: 'bad_response' },
      { scripts: [{ lines: [] }], reason: 'forbidden', list: 403 },
      { scripts: [{ lines: [] }], reason: 'forbidden', list: 401 },
      { scripts: [{ lines: [] }], reason: 'server_error', list: 429 },
    ]
    for (const c of cases) {
      const { watch, lines, failures } = fakeWatch(c.scripts, { listStatus: c.list })
      try {
        await waitFor(() => failures.length > 0, { what: `a failure reported (${c.reason})` })
      } finally {
        watch.close()
      }
      assert.equal(failures[0], c.reason)
      assert.equal(lines.find((l) => l.event === 'watch_failed')?.reason, c.reason, 'the log line names the reason')
    }
  })

  it('a cut connection is logged with its reason but not reported: the watch resumes, and the read after it counts a real outage', async () => {
    const modified = JSON.stringify({ type: 'MODIFIED', object: { metadata: { resourceVersion: '7' } } })
    const { watch, lines, failures } = fakeWatch([{ lines: [modified], cut: true }])
    try {
      await waitFor(() => lines.filter((l) => l.event === 'watch_failed').length >= 2, { what: 'two cuts' })
    } finally {
      watch.close()
    }
    assert.equal(lines.find((l) => l.event === 'watch_failed')?.reason, 'unreachable')
    assert.deepEqual(failures, [])
  })

  it('over HTTP: an ERROR event keeps its own reason (a Role revoked mid-watch is forbidden, not unreachable)', async () => {
    // The API client turns socket errors into `unreachable`; what the watch itself throws for an
    // event must reach it as thrown.
    const denied = JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403 } })
    const server = http.createServer((req, res) => {
      if (req.url?.includes('watch=true')) res.writeHead(200, { 'content-type': 'application/json' }).end(`${denied}\n`)
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'SecretList', metadata: { resourceVersion: '5' } }))
    })
    const { failures, close } = await watchOver(server, { backoffMs: 60_000, random: 0 })
    try {
      await waitFor(() => failures.length > 0, { what: 'the ERROR event reported' })
    } finally {
      await close()
    }
    assert.equal(failures[0], 'forbidden')
  })

  // The watch sends the last resourceVersion back in the next request's query. One it cannot send
  // (a lone surrogate, which no URL can carry) or no API server takes in a request line (431) would
  // fail every attempt after it, forever, counted each time: the event is malformed instead, and
  // the watch resumes from the last good one. So is an event of a shape no API server sends.
  const modified = (rv: string) => `{"type":"MODIFIED","object":{"metadata":{"resourceVersion":${rv}}}}`
  for (const [what, line] of [
    ['a resourceVersion with a lone surrogate (no URL can carry it)', modified('"\\ud800"')],
    ['a resourceVersion of 20 000 characters (no request line carries it)', modified(JSON.stringify('9'.repeat(20_000)))],
    ['an event that is null', 'null'],
    ['an event whose type cannot be made text', '{"type":{"toString":1,"valueOf":1},"object":{"metadata":{"resourceVersion":"8"}}}'],
  ]) {
    it(`attack: ${what} is a malformed event (bad_response); the watch resumes from the last good one`, async () => {
      const resumedFrom: Array<string | null> = []
      const server = http.createServer((req, res) => {
        const url = new URL(req.url!, 'http://x')
        if (url.searchParams.get('watch') !== 'true') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'SecretList', metadata: { resourceVersion: '5' } }))
          return
        }
        resumedFrom.push(url.searchParams.get('resourceVersion'))
        if (resumedFrom.length === 1) res.writeHead(200, { 'content-type': 'application/json' }).end(`${modified('"6"')}\n${line}\n`)
        else res.writeHead(200, { 'content-type': 'application/json' }).write(`${modified('"7"')}\n`)
      })
      const { watch, failures, close } = await watchOver(server, { backoffMs: 1, random: 1 })
      try {
        await waitFor(() => watch.resourceVersion() === '7', { what: 'the watch resumed and delivering again' })
      } finally {
        await close()
      }
      assert.deepEqual(resumedFrom, ['5', '6'])
      assert.deepEqual(failures, ['bad_response'])
    })
  }

  it('a watch that only ever sends ERROR events backs off longer each time', async () => {
    const failing = JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'InternalError', code: 500 } })
    const { watch, lines } = fakeWatch([{ lines: [failing] }])
    try {
      await waitFor(() => lines.filter((l) => l.event === 'watch_failed').length >= 3, { what: 'three failed attempts' })
    } finally {
      watch.close()
    }
    const failures = lines.filter((l) => l.event === 'watch_failed').map((l) => l.failures)
    assert.deepEqual(failures.slice(0, 3), [1, 2, 3], 'the count of failures (and so the backoff) grows')
  })

  it('a watch the server closes at once without an event goes through the backoff, never a hot loop', async () => {
    // A proxy that ends every watch as soon as it opens: client-go's reflector calls this a "very
    // short watch" and backs off; re-watching at once would send requests as fast as they return.
    const { watch, lines } = fakeWatch([{ lines: [] }], { backoffMs: 60_000 })
    try {
      await waitFor(() => lines.some((l) => l.event === 'watch_failed'), { what: 'the backoff after a watch that closed at once' })
    } finally {
      watch.close()
    }
  })

  it('a 410 ERROR event right after a list goes through the backoff, never a hot list/watch loop', async () => {
    // Kubernetes sends an expired resourceVersion as 200 and one ERROR event (410 Expired). After a
    // list, one at once means the list's own version expired: retried after a backoff, like any failure.
    const { watch, lines, lists } = fakeWatch([{ lines: [expired] }], { backoffMs: 60_000 })
    try {
      await waitFor(() => lines.some((l) => l.event === 'watch_failed'), { what: 'the backoff after a 410 that follows a list' })
      assert.equal(lists(), 2, 'the first list, one relist, then the backoff')
    } finally {
      watch.close()
    }
  })

  it('every list prompts a read, a relist after a 410 too (what changed while the history was gone); a bookmark only moves the resume point', async () => {
    const bookmark = JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '7' } } })
    const { watch, timeline, idles } = fakeWatch([{ lines: [bookmark, modified('"8"'), expired] }, { lines: [], cut: true }], { backoffMs: 60_000 })
    try {
      await waitFor(() => timeline.includes('watch_failed'), { what: 'the cut after the relist' })
    } finally {
      watch.close()
    }
    assert.deepEqual(timeline, ['change', 'change', 'watch_relist', 'change', 'watch_failed', 'change'])
    // Silence counts as a dead connection only well past the server's own end of the stream.
    assert.ok(
      idles.every((ms) => ms > 300_000),
      `idle limits ${idles.join(', ')} ms against timeoutSeconds=300`,
    )
  })

  it('a watch refused with HTTP 410 lists again, as the ERROR event does: routine, not a failure', async () => {
    const { watch, timeline, failures, lists } = fakeWatch(
      [
        { lines: [], refused: 410 },
        { lines: [modified('"9"')], cut: true },
      ],
      { backoffMs: 60_000 },
    )
    try {
      await waitFor(() => timeline.includes('watch_failed'), { what: 'the cut after the relist' })
    } finally {
      watch.close()
    }
    assert.equal(lists(), 2)
    assert.deepEqual(timeline.slice(0, 3), ['change', 'watch_relist', 'change'])
    assert.deepEqual(failures, [], 'a relist is routine, and a cut connection is not reported')
  })

  it('a list answer without a resourceVersion is bad_response, and no watch is started from nothing', async () => {
    const { watch, failures, idles } = fakeWatch([{ lines: [] }], { backoffMs: 60_000, listJson: { kind: 'SecretList', metadata: {} } })
    try {
      await waitFor(() => failures.length > 0, { what: 'the refused list answer' })
    } finally {
      watch.close()
    }
    assert.deepEqual(failures, ['bad_response'])
    assert.equal(idles.length, 0, 'no watch request')
  })

  it('one event ends a failing streak: the next failure backs off from the start again', async () => {
    const failing = JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'InternalError', code: 500 } })
    const { watch, lines } = fakeWatch([{ lines: [failing] }, { lines: [modified('"9"'), failing] }])
    try {
      await waitFor(() => lines.filter((l) => l.event === 'watch_failed').length >= 4, { what: 'four failed attempts' })
    } finally {
      watch.close()
    }
    assert.deepEqual(
      lines
        .filter((l) => l.event === 'watch_failed')
        .map((l) => l.failures)
        .slice(0, 4),
      [1, 1, 1, 1],
    )
    assert.ok(lines.some((l) => l.event === 'watch_resumed'))
  })

  it('a 410 after events is routine again, even after one that came right after a list', async () => {
    // The first 410 follows the list's own version (a failure, backed off); once events came,
    // the next 410 is the history moving on: listed again, not counted.
    const { watch, failures, lists } = fakeWatch([{ lines: [expired] }, { lines: [expired] }, { lines: [modified('"9"'), expired] }])
    try {
      await waitFor(() => lists() >= 6, { what: 'relists after events' })
    } finally {
      watch.close()
    }
    assert.deepEqual(failures, ['server_error'])
  })

  it('a watch that delivered events and ended at once is resumed, not backed off as a very short watch', async () => {
    const { watch, failures, idles } = fakeWatch([{ lines: [modified('"9"')] }])
    try {
      await waitFor(() => idles.length >= 5, { what: 'five watches, each with an event' })
    } finally {
      watch.close()
    }
    assert.deepEqual(failures, [])
  })

  it('closed mid-stream: no watch_failed line, no failure counted, no read prompted after close()', async () => {
    const { watch, timeline, failures } = fakeWatch([{ lines: [modified('"9"')], hang: true }])
    await waitFor(() => timeline.length === 2, { what: 'the list and the event read' })
    watch.close()
    // The stream ends at once on close (its signal), and what follows it runs in the next turns.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(timeline, ['change', 'change'])
    assert.deepEqual(failures, [])
  })

  it('the backoff doubles from backoffMinMs at each failure in a row and stays at backoffMaxMs, however long the streak', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    const failing = JSON.stringify({ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'InternalError', code: 500 } })
    const { watch, idles } = fakeWatch([{ lines: [failing] }], { backoffMs: 100, backoffMaxMs: 400 })
    // Without timers, every turn the watch can take: the fake API answers in the next turn.
    const settle = async () => {
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
    }
    try {
      await settle()
      assert.equal(idles.length, 1, 'the first watch failed, and waits')
      const waits: number[] = []
      for (let attempt = 2; attempt <= 7; attempt++) {
        let waited = 0
        while (idles.length < attempt && waited < 60_000) {
          t.mock.timers.tick(10)
          waited += 10
          await settle()
        }
        waits.push(waited)
      }
      // The jitter is taken at its top (random = 1): each wait is the whole backoff.
      assert.deepEqual(waits, [100, 200, 400, 400, 400, 400])
    } finally {
      watch.close()
    }
    // At its bottom (random = 0) the wait is still 50 ms: never a hot loop, however the jitter falls.
    const low = fakeWatch([{ lines: [failing] }], { backoffMs: 100, backoffMaxMs: 400, random: 0 })
    try {
      await settle()
      for (let attempt = 2; attempt <= 4; attempt++) {
        let waited = 0
        while (low.idles.length < attempt && waited < 60_000) {
          t.mock.timers.tick(10)
          waited += 10
          await settle()
        }
        assert.equal(waited, 50)
      }
    } finally {
      low.watch.close()
    }
  })

  // Found black-box: after a 12–20 s API outage, a revoke written as soon as the API was back
  // was in force on the watching replica only 8–9 s later (the watch was still backing off,
  // doubling toward 30 s); the contract's "in force about a second after it is written".
  it('by default the backoff doubles from 0.5 s and stops at 5 s: a watch is back within seconds of the API', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] })
    let streams = 0
    const api: KubernetesApi = {
      async request() {
        return { status: 200, json: { kind: 'SecretList', metadata: { resourceVersion: '100' } } }
      },
      async stream() {
        streams++
        await new Promise((resolve) => setImmediate(resolve))
        return { ended: 'refused', status: 503, json: { kind: 'Status', code: 503 } }
      },
      close() {},
    }
    const watch = startSecretWatch({
      api,
      namespace: NS,
      name: SECRET,
      onChange() {},
      logger: { info() {}, warn() {} },
      location: 'kubernetes:cbc/cbc-secrets#jwt-keyset',
      maxEventBytes: 65_536,
      random: () => 1,
    })
    const settle = async () => {
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
    }
    try {
      await settle()
      const waits: number[] = []
      for (let attempt = 2; attempt <= 8; attempt++) {
        let waited = 0
        while (streams < attempt && waited < 60_000) {
          t.mock.timers.tick(100)
          waited += 100
          await settle()
        }
        waits.push(waited)
      }
      assert.deepEqual(waits, [500, 1000, 2000, 4000, 5000, 5000, 5000])
    } finally {
      watch.close()
    }
  })

  for (const [what, status] of [
    ['a code 410 alone', { kind: 'Status', code: 410 }],
    ['a reason Expired alone', { kind: 'Status', reason: 'Expired' }],
    ['a reason Gone alone', { kind: 'Status', reason: 'Gone' }],
  ] as const) {
    it(`a 410 ERROR event in any form (${what}) lists again, routine, not a failure`, async () => {
      const gone = JSON.stringify({ type: 'ERROR', object: status })
      const { watch, timeline, failures, lists } = fakeWatch([{ lines: [modified('"9"'), gone] }, { lines: [], cut: true }], { backoffMs: 60_000 })
      try {
        await waitFor(() => timeline.includes('watch_failed'), { what: 'the cut after the relist' })
      } finally {
        watch.close()
      }
      assert.equal(lists(), 2)
      assert.deepEqual(failures, [])
    })
  }

  it('a resourceVersion is resumed from up to 1024 characters as sent back, and never when empty', async () => {
    const longest = '9'.repeat(1024)
    const { watch, failures } = fakeWatch([{ lines: [modified(JSON.stringify(longest))], hang: true }])
    try {
      await waitFor(() => watch.resourceVersion() === longest, { what: 'the longest resourceVersion taken' })
      assert.deepEqual(failures, [])
    } finally {
      watch.close()
    }
    const empty = fakeWatch([{ lines: [modified('""')] }], { backoffMs: 60_000 })
    try {
      await waitFor(() => empty.failures.length > 0, { what: 'the empty resourceVersion refused' })
      assert.deepEqual(empty.failures, ['bad_response'])
      assert.equal(empty.watch.resourceVersion(), '101', 'still the list’s')
    } finally {
      empty.watch.close()
    }
  })
})
