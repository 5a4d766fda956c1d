// "kill -9 of the CLI at random points during a write always leaves the previous or the next
// valid keyset, never a partial one, never a world-readable temp file" (issue 8), proven with
// the real CLI process (dist/ops/cli/main.js) on a plain file and on the Vault KV v2 test double.
//
// Each backend: one complete run of every writing command first (it proves the successor
// checks accept what the CLI really writes, and measures T, how long one run takes here and
// now: the median of the four), then N runs each SIGKILLed at a seeded-random point:
// - `timer`: after a delay drawn stratified over 0..1.1·T (from process start-up to exit);
// - file `watch`: on the 1st or 2nd change event of the keyset's directory, i.e. while the
//   temp copy is being written or just after the rename — the instants a timer rarely hits;
// - Vault `write-drop` / `write-forward`: a proxy holds the CLI's write request, kills the CLI,
//   then drops the request (it never reached Vault) or delivers it (it did, but the CLI never
//   saw the answer).
// After every run: the stored text parses, `loadKeyset` accepts it, and it is byte-identical to
// the text before or is a valid successor for that command (e.g. rotate: the previous current
// key is still there, verify-only); a run that was not killed wrote a successor; and the
// verification projection is not behind it (§10: it holds the key the keyset signs with and
// every cut-off the keyset holds — this found keyset init --force leaving a projection that
// lacked the key the keyset in force still signed with). File: the
// file's mode is kept and nothing left in the directory is readable by group or other; a
// final complete run leaves nothing but the keyset. Vault: the version advanced by at most
// one, the secret's other fields are kept, and the CLI wrote no local file.
//
// Replay a failure with CBC_JWT_CRASH_SEED=<the printed seed>: the seed fixes the plan (command,
// kill mode, kill instant as a fraction of T, file mode); T is measured anew, so a timer kill
// lands near the same point of the run. CBC_JWT_CRASH_ITERATIONS=<n> runs more (default 20 per
// backend). With CI set the seed is fixed.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { KeysetDocument } from '../../src/lib/keyset/document.js'
import { generateKeyset, toRfc3339 } from '../../src/lib/keyset/generate.js'
import { loadKeyset, parseKeysetText } from '../../src/lib/keyset/load.js'
import { serializeKeyset } from '../../src/lib/keyset/serialize.js'
import { projectionOf } from '../../src/ops/projection/publish.js'
import { crashSeed, prng, runKillable, type KillableRun, type Trigger } from '../support/kill-points.js'
import { CLI_MAIN } from '../support/service.js'
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

/** A writing command and what a valid result of it looks like, given the document before. */
interface Writer {
  name: string
  args: string[]
  successor(prev: Doc, next: Doc): void
}

const WRITERS: readonly Writer[] = [
  {
    name: 'rotate',
    args: ['rotate'],
    successor(prev, next) {
      assert.notEqual(next.current, prev.current, 'a new current key')
      assert.deepEqual(kids(next), [...kids(prev), next.current].sort(), 'every previous key kept, one added')
      assert.ok(entry(next, prev.current)?.not_after, 'the previous current key still verifies (verify-only)')
    },
  },
  {
    name: 'rotate --stage',
    args: ['rotate', '--stage'],
    successor(prev, next) {
      assert.equal(next.current, prev.current, 'staging does not change the current key')
      const added = kids(next).filter((kid) => !kids(prev).includes(kid))
      assert.equal(added.length, 1, 'one key staged')
      assert.deepEqual(kids(next), [...kids(prev), added[0]!].sort())
      assert.equal(entry(next, added[0]!)?.not_after, undefined, 'the staged key has no not_after')
    },
  },
  {
    name: 'revoke --issued-before now',
    args: ['revoke', '--issued-before', 'now'],
    successor(prev, next) {
      assert.deepEqual(next.keys, prev.keys, 'revoking leaves the keys alone')
      assert.equal(next.revoked_before, toRfc3339(new Date(NOW_MS)))
    },
  },
  {
    name: 'keyset init --force',
    args: ['keyset', 'init', '--alg', 'ES256', '--force'],
    successor(prev, next) {
      assert.equal(next.keys.length, 1, 'a fresh keyset with one key')
      assert.ok(!kids(prev).includes(next.current), 'a new key')
    },
  },
]

/** The stored text is the one before, or a complete, valid, canonical successor. */
function checkStored(text: string, prevText: string, writer: Writer, what: string): 'previous' | 'next' {
  let loaded
  try {
    loaded = loadKeyset(parseKeysetText(text), NOW_MS)
  } catch (err) {
    assert.fail(`${what}: the stored keyset does not load (${(err as Error).message}): ${JSON.stringify(text.slice(0, 80))}…`)
  }
  if (text === prevText) return 'previous'
  assert.equal(text, serializeKeyset(loaded.document), `${what}: the new text is exactly one canonical document`)
  try {
    writer.successor(JSON.parse(prevText) as Doc, loaded.document)
  } catch (err) {
    assert.fail(`${what}: the stored keyset is neither the previous one nor a valid result of ${writer.name}: ${(err as Error).message}`)
  }
  return 'next'
}

/**
 * §10 at every kill point: the projection never runs behind the keyset. It is a valid
 * verification keyset holding the key the keyset signs with (published before anything signs
 * with it), and every cut-off the keyset holds — a key's `not_after`, `revoked_before` — is in
 * force there no later (a revocation reaches verifiers no later than signers). Ahead is fine:
 * a killed run writes the projection first.
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
}

/** The projection the CLI keeps beside `text`, as a write leaves them level. */
function projectionText(text: string): string {
  const projected = projectionOf(JSON.parse(text) as Doc)
  assert.ok('text' in projected, 'the seed keyset has a projection')
  return projected.text
}

/** A fresh valid keyset created three days before NOW. */
const seedText = async () => serializeKeyset(await generateKeyset('ES256', new Date(NOW_MS - 3 * DAY)))

type Mode = 'timer' | 'watch' | 'write-drop' | 'write-forward'
interface Planned {
  writer: Writer
  mode: Mode
  /** timer: the kill instant as a fraction of T; watch: the directory event to kill on (1, 2). */
  at: number
}

/** Writers round-robin; kill modes in the given rotation; timer instants stratified over 0..1.1. */
function plan(modes: readonly Mode[]): Planned[] {
  const timers = Array.from({ length: ITERATIONS }, (_, i) => i).filter((i) => modes[i % modes.length] === 'timer')
  return Array.from({ length: ITERATIONS }, (_, i) => {
    const mode = modes[i % modes.length]!
    const stratum = timers.indexOf(i)
    const at = mode === 'timer' ? (1.1 * (stratum + random())) / timers.length : 1 + Math.floor(random() * 2)
    return { writer: WRITERS[i % WRITERS.length]!, mode, at }
  })
}

const baseEnv = (extra: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? '', HOME: os.tmpdir(), CBC_JWT_NOW: NOW, ...extra })

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
    const seedFile = (text: string) => fs.writeFileSync(publicFile, projectionText(text), { mode: 0o644 })
    const storedProjection = () => (fs.existsSync(publicFile) ? fs.readFileSync(publicFile, 'utf8') : undefined)
    const env = baseEnv()
    const started = Date.now()

    const durations: number[] = []
    for (const writer of WRITERS) {
      const prev = await seedText()
      fs.writeFileSync(file, prev, { mode: 0o600 })
      seedFile(prev)
      const run = await runKillable([...writer.args, '--keyset-file', file], { env, cwd: dir })
      assert.equal(run.code, 0, `${writer.name}: ${run.stderr}`)
      assert.equal(checkStored(fs.readFileSync(file, 'utf8'), prev, writer, `${writer.name} (not killed)`), 'next')
      checkProjectionNotBehind(fs.readFileSync(file, 'utf8'), storedProjection(), `${writer.name} (not killed)`)
      durations.push(run.ms)
    }
    const T = median(durations)

    const outcomes: string[] = []
    const leftovers = new Set<string>()
    for (const [i, p] of plan(['timer', 'timer', 'watch', 'timer', 'watch']).entries()) {
      const what = `run ${i} (${p.writer.name}, ${p.mode} ${p.mode === 'timer' ? `${Math.round(p.at * T)} ms` : `event ${p.at}`}) ${replay}`
      // 0640: a group-readable keyset, so a temp file that copies its mode too early shows.
      const mode = random() < 0.5 ? 0o600 : 0o640
      const prev = await seedText()
      fs.writeFileSync(file, prev)
      fs.chmodSync(file, mode)
      seedFile(prev)
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
      const outcome = checkStored(fs.readFileSync(file, 'utf8'), prev, p.writer, what)
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
      `file: seed ${SEED}, T = ${T} ms, ${ITERATIONS} runs: ${tally(outcomes)}; ${leftovers.size} private temp directories left by killed runs, all gone after the next run; ${Date.now() - started} ms`,
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
        const prev = await seedText()
        assert.equal(vault.setSecret(secretPath, { [FIELD]: prev, 'db-password': 'kept' }), 1)
        vault.setSecret(`${secretPath}-public`, { [FIELD]: projectionText(prev) })
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
        return { run, prev, version, stored, projection: typeof projection === 'string' ? projection : undefined }
      }

      const durations: number[] = []
      for (const writer of WRITERS) {
        const { run, prev, version, stored, projection } = await vaultRun(writer)
        assert.equal(run.code, 0, `${writer.name}: ${run.stderr}`)
        assert.equal(version, 2)
        assert.equal(checkStored(String(stored?.[FIELD]), prev, writer, `${writer.name} (not killed)`), 'next')
        checkProjectionNotBehind(String(stored?.[FIELD]), projection, `${writer.name} (not killed)`)
        durations.push(run.ms)
      }
      const T = median(durations)

      const outcomes: string[] = []
      for (const [i, p] of plan(['timer', 'write-drop', 'timer', 'write-forward', 'timer']).entries()) {
        const what = `run ${i} (${p.writer.name}, ${p.mode}${p.mode === 'timer' ? ` ${Math.round(p.at * T)} ms` : ''}) ${replay}`
        let held = false
        const arm =
          p.mode === 'timer'
            ? armTimer(p.at * T)
            : ({ kill, exited }: Trigger) => {
                proxy.onWrite = async (url) => {
                  // The verification projection and the last good copy are written first; this run kills the keyset's write.
                  if (/-(public|last-good)(\?|$)/.test(url)) return 'forward'
                  held = true
                  kill()
                  await exited
                  return p.mode === 'write-forward' ? 'forward' : 'drop'
                }
                return () => (proxy.onWrite = undefined)
              }
        const { run, prev, version, stored, projection } = await vaultRun(p.writer, arm)
        assert.ok(version === 1 || version === 2, `${what}: at most one version written (got version ${version})`)
        assert.ok(stored, `${what}: the secret is still readable`)
        assert.equal(stored['db-password'], 'kept', `${what}: the secret's other fields are kept`)
        const outcome = checkStored(String(stored[FIELD]), prev, p.writer, what)
        checkProjectionNotBehind(String(stored[FIELD]), projection, what)
        assert.equal(outcome === 'next', version === 2, `${what}: a new version is a new keyset`)
        if (p.mode !== 'timer') {
          assert.ok(held && run.killed, `${what}: the write request was held and the CLI killed; stderr: ${run.stderr}`)
          assert.equal(outcome, p.mode === 'write-forward' ? 'next' : 'previous', what)
        }
        if (!run.killed) {
          assert.equal(run.code, 0, `${what}: ${run.stderr}`)
          assert.equal(outcome, 'next', `${what}: exit 0 but nothing was written`)
        }
        outcomes.push(`${p.mode} ${run.killed ? `killed→${outcome}` : 'finished'}`)
      }
      assert.deepEqual(fs.readdirSync(cwd), [], 'the CLI wrote no local file for a Vault keyset')
      t.diagnostic(`vault: seed ${SEED}, T = ${T} ms, ${ITERATIONS} runs: ${tally(outcomes)}; ${Date.now() - started} ms`)
    })
  })
})
