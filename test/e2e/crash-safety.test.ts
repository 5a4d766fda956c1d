// "kill -9 of the CLI at random points during a write always leaves the previous or the next
// valid keyset, never a partial one, never a world-readable temp file" (issue 8), proven with
// the real CLI process (dist/ops/cli/main.js) on a plain file, on the Vault KV v2 test double
// and on the Kubernetes API test double (the projection in two namespaces).
//
// The writers: rotate (plain, --stage, --promote, --auto, --compromised with and without a
// standby), revoke (--issued-before, --client-id, --subject, --jti), keyset init --force and
// keyset restore, each on a seed keyset that makes it do real work (a standby staged a day
// ago, a retired key, narrow rules in force, a last good copy to put back).
//
// Each backend: one complete run of every writing command first (it proves the successor
// checks accept what the CLI really writes, and measures T, how long one run takes here and
// now: the median of them), then N runs each SIGKILLed at a seeded-random point:
// - `timer`: after a delay drawn stratified over 0.4..1.1·T (from the end of start-up to exit);
// - file `watch`: on the 1st to 20th change event of the keyset's directory, i.e. while the
//   projection, the last good copy or the keyset's temp copy is being written or just after a
//   rename — the instants a timer rarely hits (a run with fewer events finishes);
// - Vault and Kubernetes `write-drop` / `write-forward`: a proxy holds the CLI's write of the
//   keyset, kills the CLI, then drops the request (it never reached the store) or delivers it
//   (it did, but the CLI never saw the answer); `nth-write` does the same to the 1st to 4th
//   write request, whichever it is (a projection, the last good copy, the keyset).
// After every run: the stored text parses, `loadKeyset` accepts it, and it is byte-identical to
// the text before or is a valid successor for that command (e.g. rotate: the previous current
// key is still there, verify-only); a run that was not killed wrote a successor; and every
// verification projection is not behind it (§10: it holds the key the keyset signs with and
// every cut-off the keyset holds, narrow rules included — this found keyset init --force
// leaving a projection that lacked the key the keyset in force still signed with). File: the
// file's mode is kept and nothing left in the directory is readable by group or other; a
// final complete run leaves nothing but the keyset. Vault: the version advanced by at most
// one, the secret's other fields are kept, and the CLI wrote no local file. Kubernetes: at most
// one new version of cbc-secrets, its other keys kept, no local file.
//
// Replay a failure with CBC_JWT_CRASH_SEED=<the printed seed>: the seed fixes the plan (command,
// kill mode, kill instant as a fraction of T, file mode); T is measured anew, so a timer kill
// lands near the same point of the run. CBC_JWT_CRASH_ITERATIONS=<n> runs more (default 20 per
// backend; the writers continue round-robin from one backend to the next). With CI set the
// seed is fixed.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ruleTarget, type KeysetDocument, type RevocationRule } from '../../src/lib/keyset/document.js'
import { generateKeyEntry, generateKeyset, toRfc3339 } from '../../src/lib/keyset/generate.js'
import { loadKeyset, parseKeysetText } from '../../src/lib/keyset/load.js'
import { serializeKeyset } from '../../src/lib/keyset/serialize.js'
import { projectionOf } from '../../src/ops/projection/publish.js'
import { DEFAULT_RULE_LIFETIME, ruleDropsAt } from '../../src/ops/rotation/revocations.js'
import { crashSeed, prng, runKillable, type KillableRun, type Trigger } from '../support/kill-points.js'
import { CLI_MAIN } from '../support/service.js'
import { startKubeDouble, type KubeDouble } from '../support/kube-double.js'
import { startVaultDouble, type VaultDouble } from '../support/vault-double.js'
import { startWriteProxy, type WriteProxy } from '../support/write-proxy.js'

// npm test builds first; a missing build must fail loudly, not skip quietly.
assert.ok(fs.existsSync(CLI_MAIN), `${CLI_MAIN} is missing: run npm run build`)

const DAY = 86_400_000
const NOW = '2026-11-25T12:00:00Z' // the CLIs' pinned clock (CBC_JWT_NOW)
const NOW_MS = Date.parse(NOW)
const FIELD = 'jwt-keyset'
const ITERATIONS = Number(process.env.CBC_JWT_CRASH_ITERATIONS ?? 20)
const SEED = crashSeed()
const random = prng(SEED)
const replay = `(replay: CBC_JWT_CRASH_SEED=${SEED})`

type Doc = KeysetDocument
const kids = (doc: Doc) => doc.keys.map((k) => k.kid).sort()
const entry = (doc: Doc, kid: string) => doc.keys.find((k) => k.kid === kid)

/** What a run starts from: the keyset, and for keyset restore the last good copy it puts back. */
interface Seed {
  keyset: string
  lastGood?: string
}

/** A writing command, the keyset that makes it do real work, and what a valid result of it looks like. */
interface Writer {
  name: string
  args: string[]
  seed(): Promise<Seed>
  successor(prev: Doc, next: Doc, seed: Seed): void
}

const at = (ms: number) => toRfc3339(new Date(NOW_MS + ms))
const HOUR = 3_600_000

/**
 * A valid keyset at NOW: a current key `currentAge` old (3 days), and on request a staged
 * standby `standbyAge` old, a retired key still verifying for a day, narrow revocation rules
 * still in force and a `revoked_before`.
 */
async function seedDoc(o: { currentAge?: number; standbyAge?: number; retired?: boolean; rules?: boolean } = {}): Promise<Doc> {
  const doc = await generateKeyset('ES256', new Date(NOW_MS - (o.currentAge ?? 3 * DAY)))
  if (o.retired) {
    const retired = await generateKeyEntry('ES256', { now: new Date(NOW_MS - 5 * DAY), taken: new Set(kids(doc)) })
    retired.not_after = at(DAY)
    doc.keys.push(retired)
  }
  if (o.standbyAge !== undefined) doc.keys.push(await generateKeyEntry('ES256', { now: new Date(NOW_MS - o.standbyAge), taken: new Set(kids(doc)) }))
  if (o.rules) {
    doc.revoked_before = at(-2 * DAY)
    doc.revocations = [
      { client_id: 'acme-old', issued_before: at(-HOUR), created_at: at(-HOUR) },
      { sub: 'bob', issued_before: at(-HOUR), created_at: at(-HOUR) },
      { jti: 'tok-old', expires_at: at(HOUR), created_at: at(-HOUR) },
    ]
  }
  return doc
}
const seedOf =
  (o: Parameters<typeof seedDoc>[0] = {}) =>
  async (): Promise<Seed> => ({ keyset: serializeKeyset(await seedDoc(o)) })

/** The one staged key of a document (no not_after, not current). */
function staged(doc: Doc): string {
  const found = doc.keys.filter((k) => k.kid !== doc.current && k.not_after === undefined)
  assert.equal(found.length, 1, `one staged key (found ${found.map((k) => k.kid).join(', ') || 'none'})`)
  return found[0]!.kid
}
const addedKids = (prev: Doc, next: Doc) => kids(next).filter((kid) => !kids(prev).includes(kid))

/** rotate --compromised: the standby (or a fresh key) signs, every other key stops verifying now, a new standby. */
function compromisedSuccessor(prev: Doc, next: Doc, hadStandby: boolean): void {
  const added = addedKids(prev, next)
  if (hadStandby) assert.equal(next.current, staged(prev), 'the standby becomes current')
  else assert.ok(added.includes(next.current), 'a fresh key becomes current')
  assert.equal(added.filter((kid) => kid !== next.current).length, 1, 'one new standby staged')
  assert.equal(
    staged(next),
    added.find((kid) => kid !== next.current),
  )
  for (const key of next.keys) {
    if (!kids(prev).includes(key.kid) || key.kid === next.current) continue
    assert.ok(key.not_after !== undefined && Date.parse(key.not_after) <= NOW_MS, `${key.kid} stops verifying now`)
  }
  assert.equal(next.revoked_before, at(0), 'revoked_before = now')
  assert.deepEqual(next.revocations, prev.revocations, 'narrow rules kept')
}

/** revoke --client-id/--subject/--jti: the keys alone, the rules before and one more. */
function narrowRevokeSuccessor(kind: 'client_id' | 'sub' | 'jti', value: string) {
  return (prev: Doc, next: Doc) => {
    assert.deepEqual(next.keys, prev.keys, 'revoking leaves the keys alone')
    assert.equal(next.revoked_before, prev.revoked_before)
    const before = prev.revocations ?? []
    assert.deepEqual(next.revocations?.slice(0, before.length), before, 'the rules in force are kept')
    const added = next.revocations?.slice(before.length) ?? []
    assert.equal(added.length, 1, 'one rule added')
    const rule = added[0] as Record<string, string>
    assert.equal(rule[kind], value)
    if (kind === 'jti') assert.ok(Date.parse(rule.expires_at!) > NOW_MS, 'the jti rule is in force')
    else assert.equal(rule.issued_before, at(0))
  }
}

const WRITERS: readonly Writer[] = [
  {
    name: 'rotate',
    args: ['rotate'],
    seed: seedOf(),
    successor(prev, next) {
      assert.notEqual(next.current, prev.current, 'a new current key')
      assert.deepEqual(kids(next), [...kids(prev), next.current].sort(), 'every previous key kept, one added')
      assert.ok(entry(next, prev.current)?.not_after, 'the previous current key still verifies (verify-only)')
    },
  },
  {
    name: 'rotate --stage',
    args: ['rotate', '--stage'],
    seed: seedOf(),
    successor(prev, next) {
      assert.equal(next.current, prev.current, 'staging does not change the current key')
      const added = addedKids(prev, next)
      assert.equal(added.length, 1, 'one key staged')
      assert.deepEqual(kids(next), [...kids(prev), added[0]!].sort())
      assert.equal(entry(next, added[0]!)?.not_after, undefined, 'the staged key has no not_after')
    },
  },
  {
    name: 'rotate --promote',
    args: ['rotate', '--promote'],
    seed: seedOf({ standbyAge: DAY, retired: true }),
    successor(prev, next) {
      assert.equal(next.current, staged(prev), 'the staged key becomes current')
      assert.deepEqual(kids(next), kids(prev), 'no key added or removed')
      const old = entry(next, prev.current)?.not_after
      assert.ok(old !== undefined && Date.parse(old) > NOW_MS, 'the previous current key verifies for the grace period')
    },
  },
  {
    name: 'rotate --auto',
    // The current key is due (6.5 days old, every 6d): the standby, staged a day ago, is promoted and a new one staged.
    args: ['rotate', '--auto'],
    seed: seedOf({ currentAge: 6.5 * DAY, standbyAge: DAY, rules: true }),
    successor(prev, next) {
      assert.equal(next.current, staged(prev), 'the standby becomes current')
      const added = addedKids(prev, next)
      assert.equal(added.length, 1, 'a new standby staged')
      assert.equal(staged(next), added[0])
      const old = entry(next, prev.current)?.not_after
      assert.ok(old !== undefined && Date.parse(old) > NOW_MS, 'the previous current key verifies for the grace period')
      assert.deepEqual(next.revocations, prev.revocations)
    },
  },
  {
    name: 'rotate --compromised (standby)',
    args: ['rotate', '--compromised'],
    seed: seedOf({ standbyAge: DAY, retired: true, rules: true }),
    successor: (prev, next) => compromisedSuccessor(prev, next, true),
  },
  {
    name: 'rotate --compromised (no standby)',
    args: ['rotate', '--compromised'],
    seed: seedOf({ retired: true, rules: true }),
    successor: (prev, next) => compromisedSuccessor(prev, next, false),
  },
  {
    name: 'revoke --issued-before now',
    args: ['revoke', '--issued-before', 'now'],
    seed: seedOf(),
    successor(prev, next) {
      assert.deepEqual(next.keys, prev.keys, 'revoking leaves the keys alone')
      assert.equal(next.revoked_before, at(0))
    },
  },
  {
    name: 'revoke --client-id',
    args: ['revoke', '--client-id', 'acme-batch', '--issued-before', 'now'],
    seed: seedOf({ rules: true }),
    successor: narrowRevokeSuccessor('client_id', 'acme-batch'),
  },
  {
    name: 'revoke --subject',
    args: ['revoke', '--subject', 'alice', '--issued-before', 'now'],
    seed: seedOf({ rules: true }),
    successor: narrowRevokeSuccessor('sub', 'alice'),
  },
  {
    name: 'revoke --jti',
    args: ['revoke', '--jti', 'tok-stolen-1'],
    seed: seedOf({ rules: true }),
    successor: narrowRevokeSuccessor('jti', 'tok-stolen-1'),
  },
  {
    name: 'keyset init --force',
    args: ['keyset', 'init', '--alg', 'ES256', '--force'],
    seed: seedOf({ retired: true, rules: true }),
    successor(prev, next) {
      assert.equal(next.keys.length, 1, 'a fresh keyset with one key')
      assert.ok(!kids(prev).includes(next.current), 'a new key')
    },
  },
  {
    name: 'keyset restore',
    // A last good copy that lacks the key the keyset in force signs with, whose cut-offs it
    // lacks too: the interim projection holds both keysets' keys and cut-offs (docs/cli.md).
    args: ['keyset', 'restore'],
    seed: async () => ({
      keyset: serializeKeyset(await seedDoc({ retired: true, rules: true })),
      lastGood: serializeKeyset(await seedDoc({ standbyAge: DAY })),
    }),
    successor: restoredCopy,
  },
  {
    name: 'keyset restore (copy ahead)',
    // What a write killed between the copy and the keyset leaves: the copy one rotation ahead.
    args: ['keyset', 'restore'],
    async seed() {
      const inForce = await seedDoc({ rules: true })
      const ahead = structuredClone(inForce)
      const next = await generateKeyEntry('ES256', { now: new Date(NOW_MS - HOUR), taken: new Set(kids(inForce)) })
      ahead.keys.push(next)
      entry(ahead, inForce.current)!.not_after = at(DAY)
      ahead.current = next.kid
      return { keyset: serializeKeyset(inForce), lastGood: serializeKeyset(ahead) }
    },
    successor: restoredCopy,
  },
]

function restoredCopy(_prev: Doc, next: Doc, seed: Seed): void {
  assert.equal(serializeKeyset(next), seed.lastGood, 'the last good copy, as it was')
}

/** The stored text is the one before, or a complete, valid, canonical successor. */
function checkStored(text: string, seed: Seed, writer: Writer, what: string): 'previous' | 'next' {
  const prevText = seed.keyset
  let loaded
  try {
    loaded = loadKeyset(parseKeysetText(text), NOW_MS)
  } catch (err) {
    assert.fail(`${what}: the stored keyset does not load (${(err as Error).message}): ${JSON.stringify(text.slice(0, 80))}…`)
  }
  if (text === prevText) return 'previous'
  assert.equal(text, serializeKeyset(loaded.document), `${what}: the new text is exactly one canonical document`)
  try {
    writer.successor(JSON.parse(prevText) as Doc, loaded.document, seed)
  } catch (err) {
    assert.fail(`${what}: the stored keyset is neither the previous one nor a valid result of ${writer.name}: ${(err as Error).message}`)
  }
  return 'next'
}

/**
 * §10 at every kill point: the projection never runs behind the keyset. It is a valid
 * verification keyset holding the key the keyset signs with (published before anything signs
 * with it), and every cut-off the keyset holds — a key's `not_after`, `revoked_before`, each
 * narrow rule still in force (§12) — is in force there no later (a revocation reaches verifiers
 * no later than signers). Ahead is fine: a killed run writes the projection first, and `rotate
 * --compromised` cuts keys off there before the keyset signs with the standby.
 */
function checkProjectionNotBehind(keysetText: string, projectionText: string | undefined, what: string): void {
  assert.ok(projectionText !== undefined, `${what}: the verification projection is gone`)
  const keyset = loadKeyset(parseKeysetText(keysetText), NOW_MS).document
  let projection: Doc
  try {
    projection = loadKeyset(parseKeysetText(projectionText), NOW_MS).document
  } catch (err) {
    assert.fail(`${what}: the stored projection does not load (${(err as Error).message})`)
  }
  assert.ok(entry(projection, keyset.current), `${what}: the keyset signs with ${keyset.current}, which the projection lacks`)
  for (const key of keyset.keys) {
    const published = entry(projection, key.kid)
    if (key.not_after === undefined || published === undefined) continue
    assert.ok(
      published.not_after !== undefined && Date.parse(published.not_after) <= Date.parse(key.not_after),
      `${what}: ${key.kid} stops verifying at ${key.not_after} in the keyset, at ${published.not_after ?? 'never'} in the projection`,
    )
  }
  if (keyset.revoked_before !== undefined) {
    assert.ok(
      projection.revoked_before !== undefined && Date.parse(projection.revoked_before) >= Date.parse(keyset.revoked_before),
      `${what}: revoked_before ${keyset.revoked_before} in the keyset, ${projection.revoked_before ?? 'none'} in the projection`,
    )
  }
  for (const rule of keyset.revocations ?? []) {
    if (ruleDropsAt(rule, DEFAULT_RULE_LIFETIME) < NOW_MS) continue // pruned by any write: it matches no valid token
    assert.ok(ruleCovered(rule, projection), `${what}: the keyset's rule ${JSON.stringify(rule)} is not in force in the projection`)
  }
}

/** A rule of the keyset is in force in `projection`: the same rule or a wider one (a later cut-off, or `revoked_before`). */
function ruleCovered(rule: RevocationRule, projection: Doc): boolean {
  const { kind, value } = ruleTarget(rule)
  if (!('jti' in rule) && projection.revoked_before !== undefined && Date.parse(projection.revoked_before) >= Date.parse(rule.issued_before)) return true
  return (projection.revocations ?? []).some((other) => {
    const target = ruleTarget(other)
    if (target.kind !== kind || target.value !== value) return false
    if ('jti' in rule) return 'jti' in other && Date.parse(other.expires_at) >= Date.parse(rule.expires_at)
    return !('jti' in other) && Date.parse(other.issued_before) >= Date.parse(rule.issued_before)
  })
}

/** The projection the CLI keeps beside `text`, as a write leaves them level. */
function projectionText(text: string): string {
  const projected = projectionOf(JSON.parse(text) as Doc)
  assert.ok('text' in projected, 'the seed keyset has a projection')
  return projected.text
}

/**
 * About how many directory events a file write makes: the update lock, the projection, the
 * last good copy and the keyset each take a temp file, a lock, a rename and their removal.
 */
const WATCH_EVENTS = 20

/** What a store holds after a run: the keyset, and each verification projection. */
interface Stored {
  keyset: string
  projections: Array<string | undefined>
}

/**
 * After a kill that left a projection apart from the keyset (ahead of it), a documented repair
 * levels every projection with the keyset it stores: running the same command again (§10), or
 * `rotate --auto` (docs/cli.md, "projection in sync"), one or the other as `run` is even or
 * odd. Returns the repair used, if one was needed.
 */
async function checkRepair(what: string, read: () => Stored, writer: Writer, run: number, cli: (args: string[]) => Promise<KillableRun>) {
  const left = read()
  if (left.projections.every((p) => p === projectionText(left.keyset))) return undefined
  const args = run % 2 === 0 ? writer.args : ['rotate', '--auto']
  const repair = `${args.join(' ')} again`
  const result = await cli(args)
  assert.equal(result.code, 0, `${what}: ${repair}, to repair a projection apart from its keyset, failed: ${result.stderr}`)
  const repaired = read()
  for (const [i, p] of repaired.projections.entries()) {
    assert.equal(p, projectionText(repaired.keyset), `${what}: projection ${i} is still apart from the keyset after ${repair}`)
  }
  return args[1] === '--auto' ? 'rotate --auto' : 'the same command'
}

type Mode = 'timer' | 'watch' | 'write-drop' | 'write-forward' | 'nth-write'
interface Planned {
  writer: Writer
  mode: Mode
  /**
   * timer: the kill instant as a fraction of T; watch: the directory event to kill on (1–20);
   * nth-write: in [1, 5), the write request to hold (its integer part: a projection, the last
   * good copy or the keyset, whichever comes then), forwarded when the fraction is ≥ ½, else dropped.
   */
  at: number
}

/**
 * Writers round-robin from `first` (each backend starts where the one before stopped, so
 * every writer gets its share of kills over the backends); kill modes in the given rotation;
 * timer instants stratified over 0.4..1.1.
 */
function plan(modes: readonly Mode[], first: number): Planned[] {
  const timers = Array.from({ length: ITERATIONS }, (_, i) => i).filter((i) => modes[i % modes.length] === 'timer')
  return Array.from({ length: ITERATIONS }, (_, i) => {
    const mode = modes[i % modes.length]!
    const stratum = timers.indexOf(i)
    // Timer kills from 0.4·T: before that the CLI is still starting up and has read nothing.
    const point =
      mode === 'timer' ? 0.4 + (0.7 * (stratum + random())) / timers.length : mode === 'nth-write' ? 1 + random() * 4 : 1 + Math.floor(random() * WATCH_EVENTS)
    return { writer: WRITERS[(first + i) % WRITERS.length]!, mode, at: point }
  })
}

const baseEnv = (extra: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? '', HOME: os.tmpdir(), CBC_JWT_NOW: NOW, ...extra })

/** A planned run, for the failure messages that name it (with the seed to replay it). */
function describePlan(p: Planned, T: number): string {
  if (p.mode === 'timer') return `${p.writer.name}, timer ${Math.round(p.at * T)} ms`
  if (p.mode === 'nth-write') return `${p.writer.name}, nth-write #${Math.floor(p.at)} ${p.at % 1 >= 0.5 ? 'forward' : 'drop'}`
  return `${p.writer.name}, ${p.mode}`
}

/**
 * The kill of a planned run through the write proxy: at its timer; or holding a write request,
 * killing the CLI, then dropping or delivering the request — the nth write (`nth-write`), or
 * the keyset's own (`write-drop`, `write-forward`; `isKeysetWrite` tells it by its URL).
 */
function proxyKill(proxy: WriteProxy, p: Planned, T: number, isKeysetWrite: (url: string) => boolean) {
  let held = false
  const arm =
    p.mode === 'timer'
      ? armTimer(p.at * T)
      : ({ kill, exited }: Trigger) => {
          let writes = 0
          const nth = p.mode === 'nth-write'
          proxy.onWrite = async (url) => {
            if (nth ? ++writes !== Math.floor(p.at) : !isKeysetWrite(url)) return 'forward'
            held = true
            kill()
            await exited
            return (nth ? p.at % 1 >= 0.5 : p.mode === 'write-forward') ? 'forward' : 'drop'
          }
          return () => (proxy.onWrite = undefined)
        }
  return { arm, held: () => held }
}

/** A run that held the keyset's write ends as the proxy made it; one not killed wrote its successor. */
function checkKillOutcome(p: Planned, run: KillableRun, outcome: 'previous' | 'next', held: boolean, what: string): void {
  if (p.mode === 'write-drop' || p.mode === 'write-forward') {
    assert.ok(held && run.killed, `${what}: the write request was held and the CLI killed; stderr: ${run.stderr}`)
    assert.equal(outcome, p.mode === 'write-forward' ? 'next' : 'previous', what)
  }
  if (!run.killed) {
    assert.equal(run.code, 0, `${what}: ${run.stderr}`)
    assert.equal(outcome, 'next', `${what}: exit 0 but nothing was written`)
  }
}

function armTimer(ms: number) {
  return ({ kill }: Trigger) => {
    const timer = setTimeout(kill, ms)
    return () => clearTimeout(timer)
  }
}

/** The median: one slow outlier on a loaded machine must not push most kill points past the end. */
function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return (s[Math.floor((s.length - 1) / 2)]! + s[Math.ceil((s.length - 1) / 2)]!) / 2
}

function tally(outcomes: string[]): string {
  const counts = new Map<string, number>()
  for (const o of outcomes) counts.set(o, (counts.get(o) ?? 0) + 1)
  return [...counts].map(([k, n]) => `${n} ${k}`).join(', ')
}

describe(`kill -9 during a write leaves the previous or the next valid keyset, seed ${SEED}`, () => {
  it(`plain file: ${ITERATIONS} runs killed at random points`, { timeout: 600_000 }, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-crash-file-'))
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
    const file = path.join(dir, 'keyset.json')
    const publicFile = path.join(dir, 'keyset.public.json')
    const lastGoodFile = path.join(dir, 'keyset.last-good.json')
    /** The keyset, its projection and its last good copy as a previous write left them (restore: the copy to put back). */
    const seedFiles = (seed: Seed, mode: number) => {
      fs.writeFileSync(file, seed.keyset)
      fs.chmodSync(file, mode)
      fs.writeFileSync(publicFile, projectionText(seed.keyset), { mode: 0o644 })
      fs.writeFileSync(lastGoodFile, seed.lastGood ?? seed.keyset, { mode: 0o600 })
    }
    const storedProjection = () => (fs.existsSync(publicFile) ? fs.readFileSync(publicFile, 'utf8') : undefined)
    const env = baseEnv()
    const started = Date.now()

    const durations: number[] = []
    for (const writer of WRITERS) {
      const seed = await writer.seed()
      seedFiles(seed, 0o600)
      const run = await runKillable([...writer.args, '--keyset-file', file], { env, cwd: dir })
      assert.equal(run.code, 0, `${writer.name}: ${run.stderr}`)
      assert.equal(checkStored(fs.readFileSync(file, 'utf8'), seed, writer, `${writer.name} (not killed)`), 'next')
      checkProjectionNotBehind(fs.readFileSync(file, 'utf8'), storedProjection(), `${writer.name} (not killed)`)
      durations.push(run.ms)
    }
    const T = median(durations)

    const outcomes: string[] = []
    const repairs: string[] = []
    const leftovers = new Set<string>()
    for (const [i, p] of plan(['timer', 'timer', 'watch', 'timer', 'watch'], 0).entries()) {
      const what = `run ${i} (${p.writer.name}, ${p.mode} ${p.mode === 'timer' ? `${Math.round(p.at * T)} ms` : `event ${p.at}`}) ${replay}`
      // 0640: a group-readable keyset, so a temp file that copies its mode too early shows.
      const mode = random() < 0.5 ? 0o600 : 0o640
      const seed = await p.writer.seed()
      seedFiles(seed, mode)
      const arm =
        p.mode === 'timer'
          ? armTimer(p.at * T)
          : ({ kill }: Trigger) => {
              let seen = 0
              const watcher = fs.watch(dir, () => {
                if (++seen >= p.at) kill()
              })
              return () => watcher.close()
            }
      const run = await runKillable([...p.writer.args, '--keyset-file', file], { env, cwd: dir, arm })
      const outcome = checkStored(fs.readFileSync(file, 'utf8'), seed, p.writer, what)
      checkProjectionNotBehind(fs.readFileSync(file, 'utf8'), storedProjection(), what)
      if (!run.killed) {
        assert.equal(run.code, 0, `${what}: ${run.stderr}`)
        assert.equal(outcome, 'next', `${what}: exit 0 but the keyset was not written`)
      }
      outcomes.push(`${p.mode} ${run.killed ? `killed→${outcome}` : 'finished'}`)
      assert.equal(fs.statSync(file).mode & 0o777, mode, `${what}: the keyset file keeps its mode`)
      for (const name of fs.readdirSync(dir)) {
        // The keyset itself, and its verification projection: public by design (0644).
        if (name === 'keyset.json' || name === 'keyset.public.json') continue
        // Its last good copy: private keys, owner-only like the temp files (checked below).
        if (name !== 'keyset.last-good.json') leftovers.add(name)
        // A killed writer's lock names a host and a pid, nothing else: readable by all, so that
        // another user's next write can tell it is dead (write-file-atomic.ts). Its content is checked.
        // The projection and the last good copy are written the same way, each under its own lock.
        if (/^\.keyset\.(public\.|last-good\.)?json\.(update\.)?lock$/.test(name)) {
          assert.match(fs.readFileSync(path.join(dir, name), 'utf8'), /^[0-9a-f]{8}-\d+-\w+$/, `${what}: ${name} holds only a host and a pid`)
          continue
        }
        const st = fs.lstatSync(path.join(dir, name))
        assert.equal(st.mode & 0o077, 0, `${what}: ${name} was left behind readable by group/other (mode ${(st.mode & 0o777).toString(8)})`)
      }
      const read = () => ({ keyset: fs.readFileSync(file, 'utf8'), projections: [storedProjection()] })
      const repaired = await checkRepair(what, read, p.writer, i, (args) => runKillable([...args, '--keyset-file', file], { env, cwd: dir }))
      if (repaired) repairs.push(repaired)
    }

    // A killed writer's leftovers are removed by the next complete write.
    const run = await runKillable(['rotate', '--keyset-file', file], { env, cwd: dir })
    assert.equal(run.code, 0, run.stderr)
    assert.deepEqual(
      fs.readdirSync(dir).sort(),
      ['keyset.json', 'keyset.last-good.json', 'keyset.public.json'],
      'a complete run leaves nothing but the keyset, its last good copy and its projection',
    )
    t.diagnostic(
      `file: seed ${SEED}, T = ${T} ms, ${ITERATIONS} runs: ${tally(outcomes)}; projections levelled by ${tally(repairs) || 'none'}; ${leftovers.size} private temp directories left by killed runs, all gone after the next run; ${Date.now() - started} ms`,
    )
  })

  describe('Vault KV v2 (test double)', () => {
    let vault: VaultDouble
    let proxy: WriteProxy
    before(async () => {
      vault = await startVaultDouble()
      proxy = await startWriteProxy(vault.addr)
    })
    after(async () => {
      await proxy?.close()
      await vault?.close()
    })

    it(`${ITERATIONS} runs killed at random points, some holding the write request`, { timeout: 600_000 }, async (t) => {
      const started = Date.now()
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-crash-vault-'))
      t.after(() => fs.rmSync(cwd, { recursive: true, force: true }))
      let seq = 0
      const vaultRun = async (writer: Writer, arm?: (trigger: Trigger) => () => void) => {
        const secretPath = `cbc/crash-${++seq}`
        const seed = await writer.seed()
        assert.equal(vault.setSecret(secretPath, { [FIELD]: seed.keyset, 'db-password': 'kept' }), 1)
        vault.setSecret(`${secretPath}-public`, { [FIELD]: projectionText(seed.keyset) })
        vault.setSecret(`${secretPath}-last-good`, { [FIELD]: seed.lastGood ?? seed.keyset })
        const env = baseEnv({
          CBC_JWT_BACKEND: 'vault',
          VAULT_ADDR: proxy.addr,
          VAULT_TOKEN: vault.token,
          CBC_JWT_VAULT_PATH: secretPath,
          CBC_JWT_VAULT_RETRIES: '0',
          CBC_JWT_VAULT_TIMEOUT_MS: '30000', // a loaded machine is not a Vault outage
        })
        const args = writer.args[0] === 'keyset' ? [...writer.args, '--backend', 'vault'] : writer.args
        const run: KillableRun = await runKillable(args, { env, cwd, ...(arm ? { arm } : {}) })
        // A request whose body was complete when the CLI died is still delivered: wait for it.
        await proxy.idle()
        const version = vault.version(secretPath)
        const stored = vault.secret(secretPath)
        const projection = vault.secret(`${secretPath}-public`)?.[FIELD]
        const read = (): Stored => {
          const text = vault.secret(`${secretPath}-public`)?.[FIELD]
          return { keyset: String(vault.secret(secretPath)?.[FIELD]), projections: [typeof text === 'string' ? text : undefined] }
        }
        const repair = (args: string[]) => runKillable(args[0] === 'keyset' ? [...args, '--backend', 'vault'] : args, { env, cwd })
        return { run, seed, version, stored, projection: typeof projection === 'string' ? projection : undefined, read, repair }
      }

      const durations: number[] = []
      for (const writer of WRITERS) {
        const { run, seed, version, stored, projection } = await vaultRun(writer)
        assert.equal(run.code, 0, `${writer.name}: ${run.stderr}`)
        assert.equal(version, 2)
        assert.equal(checkStored(String(stored?.[FIELD]), seed, writer, `${writer.name} (not killed)`), 'next')
        checkProjectionNotBehind(String(stored?.[FIELD]), projection, `${writer.name} (not killed)`)
        durations.push(run.ms)
      }
      const T = median(durations)

      const outcomes: string[] = []
      const repairs: string[] = []
      for (const [i, p] of plan(['timer', 'write-drop', 'timer', 'write-forward', 'nth-write'], ITERATIONS).entries()) {
        const what = `run ${i} (${describePlan(p, T)}) ${replay}`
        // The verification projection and the last good copy are written first; a write-drop or
        // write-forward run kills the keyset's write.
        const kill = proxyKill(proxy, p, T, (url) => !/-(public|last-good)(\?|$)/.test(url))
        const { run, seed, version, stored, projection, read, repair } = await vaultRun(p.writer, kill.arm)
        assert.ok(version === 1 || version === 2, `${what}: at most one version written (got version ${version})`)
        assert.ok(stored, `${what}: the secret is still readable`)
        assert.equal(stored['db-password'], 'kept', `${what}: the secret's other fields are kept`)
        const outcome = checkStored(String(stored[FIELD]), seed, p.writer, what)
        checkProjectionNotBehind(String(stored[FIELD]), projection, what)
        assert.equal(outcome === 'next', version === 2, `${what}: a new version is a new keyset`)
        checkKillOutcome(p, run, outcome, kill.held(), what)
        outcomes.push(`${p.mode} ${run.killed ? `killed→${outcome}` : 'finished'}`)
        const repaired = await checkRepair(what, read, p.writer, i, repair)
        if (repaired) repairs.push(repaired)
      }
      assert.deepEqual(fs.readdirSync(cwd), [], 'the CLI wrote no local file for a Vault keyset')
      t.diagnostic(
        `vault: seed ${SEED}, T = ${T} ms, ${ITERATIONS} runs: ${tally(outcomes)}; projections levelled by ${tally(repairs) || 'none'}; ${Date.now() - started} ms`,
      )
    })
  })

  describe('Kubernetes (API test double), the projection in two namespaces', () => {
    const NS = 'cbc'
    const PUBLIC_NAMESPACES = ['cbc', 'orders']
    const KEYSET_PATH = `/api/v1/namespaces/${NS}/secrets/cbc-secrets`
    let kube: KubeDouble
    let proxy: WriteProxy
    before(async () => {
      kube = await startKubeDouble()
      proxy = await startWriteProxy(kube.url)
    })
    after(async () => {
      await proxy?.close()
      await kube?.close()
    })

    it(`${ITERATIONS} runs killed at random points, some holding the write of cbc-secrets`, { timeout: 600_000 }, async (t) => {
      const started = Date.now()
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-crash-kube-'))
      t.after(() => fs.rmSync(cwd, { recursive: true, force: true }))
      // The CLI talks to the double through the proxy, which can hold its write of cbc-secrets.
      const kubeconfig = kube.writeKubeconfig(path.join(os.tmpdir(), `cbc-crash-kubeconfig-${process.pid}`), { namespace: NS })
      t.after(() => fs.rmSync(kubeconfig, { force: true }))
      const config = JSON.parse(fs.readFileSync(kubeconfig, 'utf8'))
      config.clusters[0].cluster.server = proxy.addr
      fs.writeFileSync(kubeconfig, JSON.stringify(config))
      const env = baseEnv({ CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: kubeconfig, CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES: PUBLIC_NAMESPACES.join(',') })
      const text = (ns: string, name: string) => {
        const data = kube.secret(ns, name)?.data[FIELD]
        return data === undefined ? undefined : Buffer.from(data, 'base64').toString('utf8')
      }
      const kubeRun = async (writer: Writer, arm?: (trigger: Trigger) => () => void) => {
        const seed = await writer.seed()
        kube.setSecret(NS, 'cbc-secrets', { [FIELD]: seed.keyset, 'db-password': 'kept' })
        for (const ns of PUBLIC_NAMESPACES) kube.setSecret(ns, 'cbc-jwt-verification', { [FIELD]: projectionText(seed.keyset) })
        kube.setSecret(NS, 'cbc-jwt-last-good', { [FIELD]: seed.lastGood ?? seed.keyset })
        const versionBefore = kube.secret(NS, 'cbc-secrets')!.metadata.resourceVersion
        const callsBefore = kube.calls.length
        const args = writer.args[0] === 'keyset' ? [...writer.args, '--backend', 'kubernetes'] : writer.args
        const run: KillableRun = await runKillable(args, { env, cwd, ...(arm ? { arm } : {}) })
        await proxy.idle()
        const writes = kube.calls.slice(callsBefore).filter((c) => c.path === KEYSET_PATH && c.verb !== 'get' && c.status < 300).length
        const stored = kube.secret(NS, 'cbc-secrets')
        const moved = stored?.metadata.resourceVersion !== versionBefore
        return { run, seed, writes, moved, stored: text(NS, 'cbc-secrets'), kept: stored?.data['db-password'] }
      }
      /** §10 in every verifying namespace: each one's cbc-jwt-verification, not just the first. */
      const checkEveryProjection = (stored: string, what: string) => {
        for (const ns of PUBLIC_NAMESPACES) checkProjectionNotBehind(stored, text(ns, 'cbc-jwt-verification'), `${what} [${ns}/cbc-jwt-verification]`)
      }

      const durations: number[] = []
      for (const writer of WRITERS) {
        const { run, seed, writes, stored } = await kubeRun(writer)
        assert.equal(run.code, 0, `${writer.name}: ${run.stderr}`)
        assert.equal(writes, 1, `${writer.name}: one write of cbc-secrets`)
        assert.equal(checkStored(String(stored), seed, writer, `${writer.name} (not killed)`), 'next')
        checkEveryProjection(String(stored), `${writer.name} (not killed)`)
        durations.push(run.ms)
      }
      const T = median(durations)

      const outcomes: string[] = []
      const repairs: string[] = []
      for (const [i, p] of plan(['timer', 'write-drop', 'timer', 'write-forward', 'nth-write'], 2 * ITERATIONS).entries()) {
        const what = `run ${i} (${describePlan(p, T)}) ${replay}`
        // The projections and the last good copy are written first; a write-drop or write-forward
        // run kills the keyset's write.
        const kill = proxyKill(proxy, p, T, (url) => new URL(url, 'http://double').pathname === KEYSET_PATH)
        const { run, seed, writes, moved, stored, kept } = await kubeRun(p.writer, kill.arm)
        assert.ok(stored !== undefined, `${what}: cbc-secrets is still there`)
        assert.ok(writes <= 1, `${what}: at most one new version of cbc-secrets (${writes} writes)`)
        assert.equal(kept, Buffer.from('kept').toString('base64'), `${what}: the Secret's other keys are kept`)
        const outcome = checkStored(stored, seed, p.writer, what)
        checkEveryProjection(stored, what)
        assert.equal(outcome === 'next', moved, `${what}: a new resourceVersion is a new keyset`)
        checkKillOutcome(p, run, outcome, kill.held(), what)
        outcomes.push(`${p.mode} ${run.killed ? `killed→${outcome}` : 'finished'}`)
        const read = (): Stored => ({ keyset: String(text(NS, 'cbc-secrets')), projections: PUBLIC_NAMESPACES.map((ns) => text(ns, 'cbc-jwt-verification')) })
        const cli = (args: string[]) => runKillable(args[0] === 'keyset' ? [...args, '--backend', 'kubernetes'] : args, { env, cwd })
        const repaired = await checkRepair(what, read, p.writer, i, cli)
        if (repaired) repairs.push(repaired)
      }
      assert.deepEqual(fs.readdirSync(cwd), [], 'the CLI wrote no local file for a Kubernetes keyset')
      t.diagnostic(
        `kubernetes: seed ${SEED}, T = ${T} ms, ${ITERATIONS} runs: ${tally(outcomes)}; projections levelled by ${tally(repairs) || 'none'}; ${Date.now() - started} ms`,
      )
    })
  })
})
