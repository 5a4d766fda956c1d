// "Two CLIs rotating at once must never lose a key" (issue 4), proven against the real CLI
// process (dist/ops/cli/main.js) and the Vault KV v2 test double (test/support/vault-double.ts).
//
// What makes the races real rather than lucky: a tiny proxy sits between the CLIs and the
// double and can hold a request until a condition is met. Each CLI gets its own
// VAULT_NAMESPACE (sent as X-Vault-Namespace, recorded by the double, no isolation there), so
// every request is attributed to the process that made it.
//
// - Gated races: the proxy holds every process's first read until all have read (they all see
//   the same version), then every first write until all have written (they all carry the same
//   cas), so Vault's check-and-set — not timing — decides who wins; with four processes the
//   second round is gated the same way, so two must fail cleanly.
// - Free races: the processes start together with nothing held; only the invariants are asserted.
// - Injected writes: a competing version is written with setSecret while one CLI's request is
//   held: after its read (→ it re-reads and re-applies) and twice (→ exit 1, nothing written).
//
// The invariants checked after every race (`checkRace`): each process exits 0, or 1 with one
// stderr line about the conflict; the version history is a chain — every version is the
// previous one plus exactly one new current key, the old current retired, not one key lost;
// the new kids in the history are exactly the kids the successful processes reported; every
// write a process sent was computed from the version its cas named (no stale cas); the
// original key is still there, verify-only with not_after = now + 24h; the final keyset
// validates; and the version advanced by exactly the number of successful processes.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import { after, before, describe, it } from 'node:test'
import type { KeyEntry, KeysetDocument } from '../../src/lib/keyset/document.js'
import { generateKeyEntry, generateKeyset, toRfc3339 } from '../../src/lib/keyset/generate.js'
import { loadKeyset } from '../../src/lib/keyset/load.js'
import { rotateNow } from '../../src/ops/rotation/rotate.js'
import { serializeKeyset } from '../../src/lib/keyset/serialize.js'
import { projectionOf } from '../../src/ops/projection/publish.js'
import { CLI_MAIN } from '../support/service.js'
import { startVaultDouble, type RecordedRequest, type VaultDouble } from '../support/vault-double.js'

// npm test builds first; a missing build must fail loudly, not skip quietly.
assert.ok(fs.existsSync(CLI_MAIN), `${CLI_MAIN} is missing: run npm run build`)

const DAY = 86_400_000
/** The CLIs' pinned clock (CBC_JWT_NOW). */
const NOW = '2026-11-25T12:00:00Z'
const NOW_MS = Date.parse(NOW)
/** not_after of the key that was current before the first rotation: now + the default 24h grace. */
const GRACE_END = toRfc3339(new Date(NOW_MS + DAY))
const FIELD = 'jwt-keyset'
const CONFLICT_LINE =
  /^cbc-jwt: vault:secret\/\S+ \(namespace [\w-]+\) was changed by another writer twice while this change was being made; nothing was written/

let vault: VaultDouble
let proxy: GateProxy
const live = new Set<ChildProcess>()
let pathSeq = 0
/** A fresh secret path per case, so cases never see each other's versions or requests. */
const freshPath = (tag: string) => `cbc/concurrency-${tag}-${++pathSeq}`

before(async () => {
  vault = await startVaultDouble()
  proxy = await startGateProxy(vault.addr)
})
after(async () => {
  for (const child of live) child.kill('SIGKILL')
  await proxy?.close()
  await vault?.close()
})

describe('two CLIs rotating at once never lose a key (Vault, e2e)', () => {
  it('two gated rotations: the loser of the check-and-set re-reads, re-applies and lands on top (both exit 0)', async (t) => {
    const race = await gatedRace(2)
    const r = await checkRace(race)
    assert.equal(r.succeeded, 2, 'the second writer re-applies its rotation on the first one’s version')
    assert.equal(r.rejectedPosts, 1, 'exactly one write was refused by Vault’s check-and-set')
    assert.equal(r.retried, 1)
    t.diagnostic(`gated x2: ${r.summary}`)
  })

  it('four gated rotations: two land (one after a re-read), two fail cleanly with nothing written', async (t) => {
    const race = await gatedRace(4)
    const r = await checkRace(race)
    // Round 1: four writes with the same cas, one lands. Round 2: the three losers re-read the
    // same version and write with the same cas, one lands; the other two have lost twice.
    assert.equal(r.succeeded, 2)
    assert.equal(r.failed, 2)
    assert.equal(r.retried, 1)
    assert.equal(r.rejectedPosts, 3 + 2, 'every refused write was a 400 check-and-set mismatch')
    t.diagnostic(`gated x4: ${r.summary}`)
  })

  it('free races of two and four processes started at once keep every reported key', async (t) => {
    const summaries: string[] = []
    for (const n of [2, 4, 4]) {
      const path = freshPath(`free${n}`)
      const { initial } = await seed(path)
      const ns = Array.from({ length: n }, (_, i) => `free${pathSeq}-${i}`)
      const runs = await Promise.all(ns.map((name) => cli(['rotate'], { path, ns: name })))
      const r = await checkRace({ path, initial, v0: 1, runs })
      assert.ok(r.succeeded >= 1, 'the first write to reach Vault always lands')
      summaries.push(`x${n}: ${r.summary}`)
    }
    t.diagnostic(`free races: ${summaries.join('; ')}`)
  })

  it('a write that lands between a CLI’s read and its write: the CLI re-reads, re-applies on top of it, exit 0', async () => {
    const path = freshPath('inject1')
    const a = `writer-${pathSeq}` // a namespace of its own: the proxy counts requests per namespace
    const { initial } = await seed(path)
    let competitor: KeysetDocument | undefined
    proxy.hook = async ({ ns, method, target, nth }) => {
      if (ns === a && target === 'keyset' && method === 'POST' && nth === 1) {
        // The CLI has read version 1 and computed its rotation; before its write reaches
        // Vault, another writer rotates (and changes another field of the secret).
        competitor = await rotateTo(initial, 'k-competitor-1')
        vault.setSecret(path, { [FIELD]: serializeKeyset(competitor), 'db-password': 'v2' })
      }
    }
    const run = await cli(['rotate'], { path, ns: a, viaProxy: true }).finally(() => (proxy.hook = undefined))
    assert.equal(run.code, 0, run.stderr)
    assert.deepEqual(
      auditLines(run.stderr).map((e) => [e.event, e.command, e.to]),
      [['keyset_changed', 'rotate', newKidOf(run)]],
      'stderr: the audit line only',
    )
    assert.match(run.stdout, /changed while this ran; the change was applied again to the new version/)
    const kid = newKidOf(run)
    assert.match(run.stdout, new RegExp(`^rotated k-competitor-1 → ${kid}:`), 'the change was re-computed from the competing version')

    const r = await checkRace({ path, initial, v0: 1, runs: [run], externalWrites: 1 })
    assert.equal(r.rejectedPosts, 1)
    assert.equal(vault.version(path), 3, 'version 2 is the competitor’s, version 3 the CLI’s')
    const stored = vault.secret(path)!
    assert.equal(stored['db-password'], 'v2', 'the competitor’s change to another field is kept')
    const doc = JSON.parse(String(stored[FIELD])) as KeysetDocument
    assert.equal(doc.current, kid)
    assert.deepEqual(kidSet(doc), new Set([kid, 'k-competitor-1', initial.current]))
    assert.equal(entry(doc, 'k-competitor-1').not_after, GRACE_END, 'the competitor’s key keeps verifying for the grace')
    assert.deepEqual(entry(doc, 'k-competitor-1').jwk, entry(competitor!, 'k-competitor-1').jwk, 'the competitor’s key material is kept as written')

    const [first, second] = posts(path, a)
    assert.equal(cas(first!), 1, 'the first write carried the version read')
    assert.equal(cas(second!), 2, 'the re-applied write carried the competitor’s version')
  })

  it('two competing writes (one before its write’s check, one during its write): exit 1, one line, nothing written', async () => {
    const path = freshPath('inject2')
    const a = `writer-${pathSeq}` // a namespace of its own: the proxy counts requests per namespace
    const { initial } = await seed(path)
    let latest: Record<string, unknown> | undefined
    proxy.hook = async ({ ns, method, target, nth }) => {
      if (ns !== a || target !== 'keyset') return
      if (method === 'GET' && nth === 2) {
        // The write's own check of the version: a competitor got in after the CLI's read.
        const doc = await rotateTo(initial, 'k-competitor-1')
        vault.setSecret(path, { [FIELD]: serializeKeyset(doc), 'db-password': 'v2' })
      }
      if (method === 'POST' && nth === 1) {
        // The CLI re-read version 2 and is writing with cas 2: a second competitor lands first.
        const prev = JSON.parse(String(vault.secret(path)![FIELD])) as KeysetDocument
        latest = { [FIELD]: serializeKeyset(await rotateTo(prev, 'k-competitor-2')), 'db-password': 'v3' }
        vault.setSecret(path, latest)
      }
    }
    const run = await cli(['rotate'], { path, ns: a, viaProxy: true }).finally(() => (proxy.hook = undefined))
    assert.equal(run.code, 1, `exit 1 expected; stdout: ${run.stdout} stderr: ${run.stderr}`)
    assert.match(oneLine(run.stderr), CONFLICT_LINE)
    assert.equal(run.stdout, '', 'nothing reported as done')

    assert.equal(vault.version(path), 3, 'only the two competing versions were written')
    assert.deepEqual(vault.secret(path), latest, 'the secret is exactly the second competitor’s version')
    const r = await checkRace({ path, initial, v0: 1, runs: [run], externalWrites: 2 })
    assert.equal(r.rejectedPosts, 1, 'one conflict seen at the write’s version check, one as a 400 from Vault')
    const sent = posts(path, a)
    assert.equal(sent.length, 1)
    assert.equal(cas(sent[0]!), 2)
  })
})

describe('the verification projection converges under concurrent writers (Vault, e2e)', () => {
  it('a winner whose projection a loser overwrote from the older version sets it back before it exits: its current key is never left unverifiable', async () => {
    // A and B read version 1 and rotate it. A publishes its projection, B publishes its own
    // (computed from version 1: it lacks A's new key) on top, then A's keyset write wins. B's
    // write is held until A has exited: the projection A leaves behind must hold the key the
    // keyset now signs with, not depend on B retrying (B could be killed, or slow).
    const path = freshPath('settle')
    const a = `settle-a-${pathSeq}`
    const b = `settle-b-${pathSeq}`
    const { initial } = await seed(path)
    const reads = barrier(2)
    let aKeysetWrite!: () => void
    const aWrites = new Promise<void>((resolve) => (aKeysetWrite = resolve))
    let bKeysetWrite!: () => void
    const bWrites = new Promise<void>((resolve) => (bKeysetWrite = resolve))
    let atExit: { keyset: KeysetDocument; projection: string | undefined } | undefined
    const runA = cli(['rotate'], { path, ns: a, viaProxy: true })
    const aDone = runA.then(() => {
      atExit = { keyset: docOf(vault.secret(path)!), projection: vault.secret(`${path}-public`)?.[FIELD] as string | undefined }
    })
    proxy.hook = ({ ns, method, target, nth }) => {
      if (target === 'keyset' && method === 'GET' && nth === 1) return reads.wait()
      if (ns === b && target === 'projection' && method === 'POST' && nth === 1) return aWrites // B publishes after A
      if (ns === a && target === 'keyset' && method === 'POST' && nth === 1) {
        aKeysetWrite()
        return bWrites // A's keyset write lands after B's projection
      }
      if (ns === b && target === 'keyset' && method === 'POST' && nth === 1) {
        bKeysetWrite()
        return aDone // B's first keyset write is decided only once A has exited
      }
      return undefined
    }
    const runs = await Promise.all([runA, cli(['rotate'], { path, ns: b, viaProxy: true })]).finally(() => (proxy.hook = undefined))
    assert.equal(reads.timedOut, false, 'both read version 1')
    for (const run of runs) assert.equal(run.code, 0, run.stderr)
    assert.ok(atExit)
    const aKid = newKidOf(runs[0]!)
    assert.equal(atExit.keyset.current, aKid, 'A’s rotation won the check-and-set')
    const projected = atExit.projection === undefined ? [] : (JSON.parse(atExit.projection) as KeysetDocument).keys.map((k) => k.kid)
    assert.ok(projected.includes(aKid), `when A exits, the projection holds the key the keyset signs with (${aKid}); it holds ${projected.join(', ')}`)
    assert.equal(atExit.projection, projectionText(atExit.keyset), 'the projection A leaves is the stored keyset’s')
    await checkRace({ path, initial, v0: 1, runs })
    assert.equal(vault.secret(`${path}-public`)?.[FIELD], projectionText(docOf(vault.secret(path)!)), 'and once B is done too')
  })

  it('free races of four rotations: the projection ends equal to the stored keyset’s (measured: reads lacking the current key)', async (t) => {
    const summaries: string[] = []
    let lacking = 0
    let looks = 0
    let exits = 0
    let exitsBehind = 0
    for (let round = 0; round < 3; round++) {
      const path = freshPath('converge')
      const { initial } = await seed(path)
      const ns = Array.from({ length: 4 }, (_, i) => `converge${pathSeq}-${i}`)
      let racing = true
      // The double lives in this process: each look at the keyset and then its projection is one
      // consistent snapshot between two requests; one a millisecond, not to starve the CLIs.
      const watcher = (async () => {
        while (racing) {
          await new Promise<void>((resolve) => setTimeout(resolve, 1))
          const stored = vault.secret(path)
          const published = vault.secret(`${path}-public`)?.[FIELD]
          if (!stored || published === undefined) continue
          const current = docOf(stored).current
          looks++
          if (!(JSON.parse(String(published)) as KeysetDocument).keys.some((k) => k.kid === current)) lacking++
        }
      })()
      // And at each process's exit: does it leave the projection without the key the keyset signs with?
      const atExit = (run: Run) => {
        const published = vault.secret(`${path}-public`)?.[FIELD]
        exits++
        if (published === undefined || !(JSON.parse(String(published)) as KeysetDocument).keys.some((k) => k.kid === docOf(vault.secret(path)!).current))
          exitsBehind++
        return run
      }
      const runs = await Promise.all(ns.map((name) => cli(['rotate'], { path, ns: name }).then(atExit))).finally(() => (racing = false))
      await watcher
      const r = await checkRace({ path, initial, v0: 1, runs })
      assert.equal(
        vault.secret(`${path}-public`)?.[FIELD],
        projectionText(docOf(vault.secret(path)!)),
        `round ${round}: the projection ends level with the keyset`,
      )
      summaries.push(r.summary)
    }
    t.diagnostic(
      `free x4: ${lacking} of ${looks} looks saw the projection without the keyset's current key; ${exitsBehind} of ${exits} exits left it so; ${summaries.join('; ')}`,
    )
  })
})

describe('keyset init --backend vault (e2e)', () => {
  const path = freshPath('init')
  let firstKid = ''

  it('creates the secret at an empty path: version 1, written with cas 0', async () => {
    const run = await cli(['keyset', 'init', '--alg', 'ES256', '--backend', 'vault'], { path, backendFromEnv: false })
    assert.equal(run.code, 0, run.stderr)
    const m = new RegExp(
      `^wrote the verification projection vault:secret/${path}-public\\ncreated vault:secret/${path}: ES256 key (k-20261125-[0-9a-f]{6}) \\(current\\)\\n$`,
    ).exec(run.stdout)
    assert.ok(m, run.stdout)
    firstKid = m[1]!
    assert.equal(vault.version(path), 1)
    const sent = posts(path)
    assert.equal(sent.length, 1)
    assert.equal(cas(sent[0]!), 0, 'a new secret is created with cas 0')
    const doc = JSON.parse(String(vault.secret(path)![FIELD])) as KeysetDocument
    assert.equal(loadKeyset(doc, NOW_MS).current.kid, firstKid)
    assert.equal(doc.keys.length, 1)
  })

  it('refuses a second init (exit 1, one line, the secret untouched)', async () => {
    assert.ok(firstKid, 'needs the previous case')
    const before = vault.secret(path)
    const run = await cli(['keyset', 'init', '--alg', 'ES256', '--backend', 'vault'], { path, backendFromEnv: false })
    assert.equal(run.code, 1)
    assert.match(oneLine(run.stderr), new RegExp(`^cbc-jwt: vault:secret/${path} already holds a valid keyset \\(current ${firstKid}\\); use --force`))
    assert.equal(run.stdout, '')
    assert.equal(vault.version(path), 1)
    assert.deepEqual(vault.secret(path), before)
    assert.equal(posts(path).length, 1, 'no write was attempted')
  })

  it('--force replaces it with check-and-set against the version read', async () => {
    assert.ok(firstKid, 'needs the previous case')
    const run = await cli(['keyset', 'init', '--alg', 'ES256', '--backend', 'vault', '--force'], { path, backendFromEnv: false })
    assert.equal(run.code, 0, run.stderr)
    assert.equal(vault.version(path), 2)
    assert.equal(cas(posts(path).at(-1)!), 1)
    const doc = JSON.parse(String(vault.secret(path)![FIELD])) as KeysetDocument
    assert.notEqual(loadKeyset(doc, NOW_MS).current.kid, firstKid)
    assert.deepEqual(kidSet(doc), new Set([doc.current]))
  })

  it('two inits racing on an empty path: one creates it, the other is refused (not silently overwritten)', async () => {
    const racePath = freshPath('init-race')
    // Both creates are held until both have arrived at their first write — the verification
    // projection's create (<path>-public, cas 0), written before the keyset: whichever check-and-set
    // refuses the loser, nothing of the winner's is overwritten.
    const writes = barrier(2)
    proxy.hook = ({ method, target, nth }) => (method === 'POST' && target === 'projection' && nth === 1 ? writes.wait() : undefined)
    const runs = await Promise.all(
      [`init-a-${pathSeq}`, `init-b-${pathSeq}`].map((ns) =>
        cli(['keyset', 'init', '--backend', 'vault'], { path: racePath, ns, viaProxy: true, backendFromEnv: false }),
      ),
    ).finally(() => (proxy.hook = undefined))
    const outcomes = runs.map((r) => `${r.code} ${r.stdout}${r.stderr}`).join(' | ')
    assert.equal(writes.timedOut, false, `both creates reached Vault together: ${outcomes}`)
    const won = runs.filter((r) => r.code === 0)
    const lost = runs.filter((r) => r.code !== 0)
    assert.equal(won.length, 1, outcomes)
    assert.equal(lost[0]!.code, 1)
    oneLine(lost[0]!.stderr)
    assert.equal(vault.version(racePath), 1, 'the winner’s keyset was not overwritten')
    const kid = /key (\S+) \(current\)/.exec(won[0]!.stdout)![1]
    assert.equal(JSON.parse(String(vault.secret(racePath)![FIELD])).current, kid)
  })
})

// ---------------------------------------------------------------------------------------------

interface Run {
  ns: string
  code: number | null
  stdout: string
  stderr: string
}

interface Race {
  path: string
  initial: KeysetDocument
  /** The version the race started from. */
  v0: number
  runs: Run[]
  /** Versions written by the test itself (setSecret) during the race. */
  externalWrites?: number
}

interface CliOptions {
  path: string
  /** VAULT_NAMESPACE: attributes the process's requests in the double's log. */
  ns?: string
  /** Through the gate proxy instead of straight to the double. */
  viaProxy?: boolean
  /** Set CBC_JWT_BACKEND=vault (else the command must say --backend vault). @default true */
  backendFromEnv?: boolean
}

/** Runs the built CLI with a minimal environment; killed (code null) after 15 s. */
function cli(args: string[], opts: CliOptions): Promise<Run> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    VAULT_ADDR: opts.viaProxy ? proxy.addr : vault.addr,
    VAULT_TOKEN: vault.token,
    CBC_JWT_VAULT_PATH: opts.path,
    CBC_JWT_VAULT_RETRIES: '0', // one GET per read: the request count shows the attempts
    CBC_JWT_VAULT_TIMEOUT_MS: '10000', // a held request is not a timeout
    CBC_JWT_NOW: NOW,
  }
  if (opts.backendFromEnv !== false) env.CBC_JWT_BACKEND = 'vault'
  if (opts.ns) env.VAULT_NAMESPACE = opts.ns
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    live.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d))
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      live.delete(child)
      resolve({ ns: opts.ns ?? '', code, stdout, stderr })
    })
  })
}

/** A valid keyset created three days before NOW, stored as version 1 with another field. */
async function seed(path: string): Promise<{ initial: KeysetDocument }> {
  const initial = await generateKeyset('ES256', new Date(NOW_MS - 3 * DAY))
  assert.equal(vault.setSecret(path, { [FIELD]: serializeKeyset(initial), 'db-password': 'v1' }), 1)
  return { initial }
}

/** `n` rotations, every first read and first write held until all have arrived, every second write until all remaining have. */
async function gatedRace(n: number): Promise<Race> {
  const path = freshPath(`gated${n}`)
  const { initial } = await seed(path)
  const reads = barrier(n)
  const firstWrites = barrier(n)
  const secondWrites = barrier(n - 1)
  proxy.hook = ({ method, target, nth }) => {
    if (target !== 'keyset') return undefined
    if (method === 'GET' && nth === 1) return reads.wait()
    if (method === 'POST' && nth === 1) return firstWrites.wait()
    if (method === 'POST' && nth === 2) return secondWrites.wait()
    return undefined
  }
  const ns = Array.from({ length: n }, (_, i) => `gated${pathSeq}-${i}`)
  const runs = await Promise.all(ns.map((name) => cli(['rotate'], { path, ns: name, viaProxy: true }))).finally(() => (proxy.hook = undefined))
  for (const [name, b] of [
    ['reads', reads],
    ['first writes', firstWrites],
    ['second writes', secondWrites],
  ] as const) {
    assert.equal(b.timedOut, false, `the ${name} barrier filled (arrived ${b.arrived})`)
  }
  return { path, initial, v0: 1, runs }
}

/** Asserts the invariants of a finished race (see the top of the file); returns what happened. */
async function checkRace(race: Race) {
  const { path, initial, v0, runs } = race
  const external = race.externalWrites ?? 0
  const outcomes = runs.map((r) => `${r.ns}: exit ${r.code}\n${r.stdout}${r.stderr}`).join('\n')

  // Every process: exit 0 with its rotation reported, or exit 1 with one line about the conflict.
  const won = runs.filter((r) => r.code === 0)
  const lost = runs.filter((r) => r.code !== 0)
  for (const r of lost) {
    assert.equal(r.code, 1, outcomes)
    assert.match(oneLine(r.stderr), CONFLICT_LINE, outcomes)
    assert.equal(r.stdout, '', outcomes)
  }
  const reported = won.map((r) => {
    assert.deepEqual(
      auditLines(r.stderr).map((e) => e.event),
      ['keyset_changed'],
      outcomes,
    )
    assert.match(r.stdout, new RegExp(`\\nwrote vault:secret/${path} \\(namespace ${r.ns}\\)\\n$`), outcomes)
    return newKidOf(r)
  })

  // The version history is a chain: each version is the one before plus one new current key.
  const final = vault.version(path)
  assert.equal(final, v0 + won.length + external, `the version advanced once per successful write\n${outcomes}`)
  const chain = await history(path, final)
  assert.deepEqual(JSON.parse(String(chain[v0]![FIELD])), initial)
  const added: string[] = []
  for (let v = v0 + 1; v <= final; v++) {
    const prev = docOf(chain[v - 1]!)
    const doc = docOf(chain[v]!)
    assert.doesNotThrow(() => loadKeyset(doc, NOW_MS), `version ${v} validates`)
    assert.ok(!kidSet(prev).has(doc.current), `version ${v} adds a new current key`)
    assert.deepEqual(kidSet(doc), new Set([...kidSet(prev), doc.current]), `version ${v} keeps every key of version ${v - 1}, adds one`)
    assert.ok(entry(doc, prev.current).not_after, `version ${v}: the previous current key is verify-only`)
    if (!doc.current.startsWith('k-competitor-')) {
      assert.equal(chain[v]!['db-password'], chain[v - 1]!['db-password'], `version ${v}: the secret's other fields kept`)
    }
    added.push(doc.current)
  }

  // The keys the successful processes reported are exactly the keys the history added.
  const ours = added.filter((kid) => !kid.startsWith('k-competitor-'))
  assert.deepEqual([...reported].sort(), [...ours].sort(), `every successful process's key is in the history, and only those\n${outcomes}`)

  // The final keyset: valid, every key there, the original retired for the grace, not pruned.
  const last = docOf(chain[final]!)
  const loaded = loadKeyset(last, NOW_MS)
  for (const kid of reported) assert.ok(loaded.keys.has(kid), `${kid} is in the final keyset`)
  assert.equal(last.keys.length, 1 + added.length)
  assert.equal(entry(last, initial.current).not_after, GRACE_END, 'the original key is verify-only for the grace, not pruned')
  assert.equal(last.current, added.at(-1))
  if (external === 0 && won.length > 0) {
    // The last good copy (<path>-last-good) ends level with the keyset: a loser puts back what
    // it overwrote, a re-applied write stores the re-applied document.
    const copy = vault.secret(`${path}-last-good`)
    assert.ok(copy, `the last good copy exists\n${outcomes}`)
    assert.deepEqual(docOf(copy), last, `the last good copy holds the final keyset\n${outcomes}`)
  }

  // Per process, from the double's request log: one read and one version check per attempt;
  // every write sent was computed from the version its cas names (no stale cas); a winner's
  // write is exactly the version that followed; a loser's keys are nowhere.
  let rejectedPosts = 0
  let retried = 0
  for (const r of runs) {
    const reqs = requestsOf(path, r.ns)
    const attempts = r.code === 0 && !/changed while this ran/.test(r.stdout) ? 1 : 2
    if (r.code === 0 && attempts === 2) retried++
    const gets = reqs.filter((q) => q.method === 'GET').length
    const sent = reqs.filter((q) => q.method === 'POST')
    assert.ok(sent.length <= attempts, `${r.ns}: at most one write per attempt`)
    let landed = 0
    for (const q of sent) {
      const c = cas(q)
      const base = chain[c]
      assert.ok(base, `${r.ns}: cas ${c} names a version that existed`)
      const data = (q.body as { data: Record<string, unknown> }).data
      const doc = docOf(data)
      assert.deepEqual(kidSet(doc), new Set([...kidSet(docOf(base)), doc.current]), `${r.ns}: the write with cas ${c} was computed from version ${c}`)
      assert.equal(data['db-password'], base['db-password'], `${r.ns}: other fields merged from version ${c}`)
      if (c + 1 <= final && docOf(chain[c + 1]!).current === doc.current) {
        assert.deepEqual(chain[c + 1], data, `${r.ns}: version ${c + 1} is exactly what was sent with cas ${c}`)
        landed++
      } else {
        rejectedPosts++
        assert.ok(!kidSet(last).has(doc.current), `${r.ns}: a refused write left no key behind`)
      }
    }
    assert.equal(landed, r.code === 0 ? 1 : 0, `${r.ns}: a successful process wrote once, a failed one never`)
    // A read and a version check per attempt. Levelling the last good copy once each attempt's
    // write is decided (refused at the version check or by Vault, or landed) reads the keyset
    // again — what won, and after each copy write whether the keyset moved meanwhile — at most
    // two reads in each of its 5 rounds: bounded, never a loop.
    assert.ok(gets >= 2 * attempts && gets <= 2 * attempts + 10 * attempts, `${r.ns}: ${gets} reads for ${attempts} attempts`)
  }
  const summary = `${won.length} succeeded (${retried} after a re-read), ${lost.length} failed, ${rejectedPosts} writes refused by check-and-set, version ${v0} → ${final}`
  return { succeeded: won.length, failed: lost.length, retried, rejectedPosts, summary }
}

/** Every version of the secret from 1 to `last`, read over HTTP with `?version=n`, as Vault serves it. */
async function history(path: string, last: number): Promise<Record<number, Record<string, unknown>>> {
  const out: Record<number, Record<string, unknown>> = {}
  for (let v = 1; v <= last; v++) {
    const res = await fetch(`${vault.addr}/v1/secret/data/${path}?version=${v}`, { headers: { 'X-Vault-Token': vault.token } })
    assert.equal(res.status, 200)
    const body = (await res.json()) as { data: { data: Record<string, unknown>; metadata: { version: number } } }
    assert.equal(body.data.metadata.version, v)
    out[v] = body.data.data
  }
  return out
}

/** The verification projection's text of `doc`, as every write publishes it. */
function projectionText(doc: KeysetDocument): string {
  const projected = projectionOf(doc)
  assert.ok('text' in projected)
  return projected.text
}
const docOf = (data: Record<string, unknown>): KeysetDocument => JSON.parse(String(data[FIELD])) as KeysetDocument
const kidSet = (doc: KeysetDocument): Set<string> => new Set(doc.keys.map((k) => k.kid))
function entry(doc: KeysetDocument, kid: string): KeyEntry {
  const e = doc.keys.find((k) => k.kid === kid)
  assert.ok(e, `${kid} is in the keyset`)
  return e
}

/** The new kid a successful `rotate` reported ("rotated OLD → NEW:"). */
function newKidOf(run: Run): string {
  const m = /^rotated (\S+) → (\S+):\n {2}added {4}(\S+) +ES256 current\n/.exec(run.stdout)
  assert.ok(m, `rotate reports the new key: ${run.stdout}`)
  assert.equal(m[2], m[3])
  return m[2]!
}

function requestsOf(path: string, ns?: string): RecordedRequest[] {
  return vault.requests.filter((q) => q.path.split('?')[0] === `/v1/secret/data/${path}` && (ns === undefined || q.headers['x-vault-namespace'] === ns))
}
const posts = (path: string, ns?: string) => requestsOf(path, ns).filter((q) => q.method === 'POST' || q.method === 'PUT')
const cas = (q: RecordedRequest): number => (q.body as { options: { cas: number } }).options.cas

/** A competing writer's rotation of `doc`, with a recognisable kid. */
async function rotateTo(doc: KeysetDocument, kid: string): Promise<KeysetDocument> {
  const { doc: next } = await rotateNow(doc, { now: NOW_MS, graceMs: DAY, newKey: (alg, o) => generateKeyEntry(alg, { now: o.now, kid }) })
  return next
}

function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '')
  assert.equal(lines.length, 1, `one line on stderr expected:\n${stderr}`)
  return lines[0]!
}

// --- the gate proxy --------------------------------------------------------------------------

interface GateRequest {
  /** X-Vault-Namespace: which CLI process. */
  ns: string
  method: string
  /** Which secret: the private keyset, its verification projection or its last good copy. */
  target: 'keyset' | 'projection' | 'copy'
  /** 1 for this process's first request with this method to this target, 2 for its second, … */
  nth: number
}

interface GateProxy {
  addr: string
  /** Called before a request is forwarded; the request waits for the promise it returns. */
  hook: ((req: GateRequest) => void | Promise<void>) | undefined
  close(): Promise<void>
}

/** A plain-HTTP forwarder to `target` that lets a test hold any request before it reaches it. */
async function startGateProxy(target: string): Promise<GateProxy> {
  const counts = new Map<string, number>()
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const ns = String(req.headers['x-vault-namespace'] ?? '')
      const method = req.method ?? 'GET'
      // Requests are counted per process, method and target: the races here are about the
      // private keyset's check-and-set, so hooks gate on the keyset's own requests unless they
      // ask for the verification projection (<path>-public) or the last good copy (<path>-last-good).
      const url = req.url ?? ''
      const secret = /-public(\?|$)/.test(url) ? 'projection' : /-last-good(\?|$)/.test(url) ? 'copy' : 'keyset'
      const key = `${ns} ${method} ${secret}`
      const nth = (counts.get(key) ?? 0) + 1
      counts.set(key, nth)
      Promise.resolve(gate.hook?.({ ns, method, target: secret, nth }))
        .catch(() => {})
        .then(() => {
          const up = http.request(new URL(req.url ?? '/', target), { method, headers: req.headers, agent: false }, (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers)
            answer.pipe(res)
          })
          up.on('error', () => res.destroy())
          up.end(Buffer.concat(chunks))
        })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const gate: GateProxy = {
    addr: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    hook: undefined,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
  return gate
}

/** Holds callers of `wait()` until `count` have called it (or 6 s have passed: then `timedOut`). */
function barrier(count: number) {
  const waiting: Array<() => void> = []
  let arrived = 0
  let open = false
  let timedOut = false
  let timer: NodeJS.Timeout | undefined
  const release = () => {
    open = true
    clearTimeout(timer)
    for (const resolve of waiting.splice(0)) resolve()
  }
  return {
    wait(): Promise<void> {
      arrived++
      if (open) return Promise.resolve()
      const p = new Promise<void>((resolve) => waiting.push(resolve))
      if (waiting.length >= count) release()
      else if (waiting.length === 1) {
        timer = setTimeout(() => {
          timedOut = true
          release()
        }, 6000)
        timer.unref()
      }
      return p
    },
    get timedOut() {
      return timedOut
    },
    get arrived() {
      return arrived
    },
  }
}

/** stderr of a successful change: exactly the keyset_changed JSON line(s), nothing else. */
function auditLines(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}
