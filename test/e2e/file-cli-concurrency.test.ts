// "Two CLIs writing one keyset file at once must never lose a change" — the file backend's
// counterpart of vault-cli-concurrency.test.ts, proven with the real CLI process
// (dist/ops/cli/main.js): several `revoke --subject` runs started together on one keyset file,
// each adding a rule of its own. A file has no server to decide a check-and-set: the CLI's
// check of the version it read and its rename must be one step for every writer, or two that
// read the same version both pass the check and the second rename drops the first's change
// while both exit 0.
//
// A second race: several `rotate` runs at once, while this process reads the keyset and then its
// projection as fast as it can. The key the keyset signs with must be in the projection at every
// look (§10: a key is published before anything signs with it). Without one change at a time, a
// writer that lost the race published a projection computed from the version before — without
// the winner's new current key — while the winner's keyset was already signing with it.
//
// The invariants after every race: each process exits 0, or 1 with one stderr line about the
// conflict; the keyset holds the rule of every process that exited 0 and no other, its
// verification projection is not behind it, and it validates; one more run then levels the
// projection and the last good copy with it, and nothing but those three files is left.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { loadKeyset, parseKeysetText } from '../../src/lib/keyset/load.js'
import { runChild } from '../support/run-child.js'
import { CLI_MAIN } from '../support/service.js'

// npm test builds first; a missing build must fail loudly, not skip quietly.
assert.ok(fs.existsSync(CLI_MAIN), `${CLI_MAIN} is missing: run npm run build`)

const NOW = '2026-11-25T12:00:00Z' // the CLIs' pinned clock (CBC_JWT_NOW)
const WRITERS = 8
const ROUNDS = 4
const CONFLICT_LINE = /^cbc-jwt: .*(changed by another writer twice|changed since it was read).*nothing was written to /

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-jwt-file-concurrency-'))
after(() => fs.rmSync(root, { recursive: true, force: true }))

function cli(args: string[]) {
  return runChild(process.execPath, [CLI_MAIN, ...args], { env: { CBC_JWT_NOW: NOW }, timeoutMs: 60_000, what: `cbc-jwt ${args.join(' ')}` })
}

const subjects = (file: string) =>
  ((JSON.parse(fs.readFileSync(file, 'utf8')) as { revocations?: { sub?: string }[] }).revocations ?? []).map((r) => r.sub).sort()

describe('file keyset: CLIs writing at once', () => {
  it(`${WRITERS} revoke --subject runs at once, ${ROUNDS} rounds: every change that exited 0 is kept, everywhere`, async () => {
    for (let round = 0; round < ROUNDS; round++) {
      const dir = path.join(root, `round-${round}`)
      fs.mkdirSync(dir)
      const file = path.join(dir, 'keyset.json')
      const init = await cli(['keyset', 'init', '--alg', 'ES256', '--keyset-file', file])
      assert.equal(init.code, 0, init.stderr)
      const runs = await Promise.all(
        Array.from({ length: WRITERS }, (_, i) => cli(['revoke', '--issued-before', 'now', '--subject', `sub-${i}`, '--keyset-file', file])),
      )
      const kept: string[] = []
      runs.forEach((run, i) => {
        if (run.code === 0) kept.push(`sub-${i}`)
        else {
          // Lost the race (the keyset, or its projection or copy, kept changing): says so, on one line.
          assert.equal(run.code, 1, `writer ${i}: ${run.stderr}`)
          assert.equal(run.stderr.trim().split('\n').length, 1, `writer ${i}: one stderr line: ${run.stderr}`)
          assert.match(run.stderr, CONFLICT_LINE, `writer ${i}`)
        }
      })
      assert.ok(kept.length > 0, 'at least one writer succeeds')
      kept.sort()
      assert.deepEqual(
        subjects(file),
        kept,
        `round ${round}: the keyset holds the rule of every writer that exited 0 (${kept.length} of ${WRITERS}), and no other`,
      )
      const projected = subjects(path.join(dir, 'keyset.public.json'))
      for (const sub of kept) assert.ok(projected.includes(sub), `round ${round}: the verification projection is not behind the keyset (${sub})`)
      loadKeyset(parseKeysetText(fs.readFileSync(file, 'utf8')), Date.parse(NOW))
      // One more run, alone, levels what a losing run left ahead (§10: running again repairs).
      const last = await cli(['revoke', '--issued-before', 'now', '--subject', 'sub-last', '--keyset-file', file])
      assert.equal(last.code, 0, last.stderr)
      const all = [...kept, 'sub-last'].sort()
      assert.deepEqual(subjects(file), all)
      assert.deepEqual(subjects(path.join(dir, 'keyset.public.json')), all, `round ${round}: the projection is level with the keyset`)
      assert.deepEqual(subjects(path.join(dir, 'keyset.last-good.json')), all, `round ${round}: so is the last good copy`)
      assert.deepEqual(fs.readdirSync(dir).sort(), ['keyset.json', 'keyset.last-good.json', 'keyset.public.json'])
    }
  })

  it(`${WRITERS} rotate runs at once: the key the keyset signs with is in its projection at every look`, async () => {
    const dir = path.join(root, 'rotate-race')
    fs.mkdirSync(dir)
    const file = path.join(dir, 'keyset.json')
    const init = await cli(['keyset', 'init', '--alg', 'ES256', '--keyset-file', file])
    assert.equal(init.code, 0, init.stderr)
    let done = false
    const runs = Promise.all(Array.from({ length: WRITERS }, () => cli(['rotate', '--keyset-file', file]))).finally(() => (done = true))
    let looks = 0
    const unpublished = new Set<string>()
    while (!done) {
      const current = (JSON.parse(fs.readFileSync(file, 'utf8')) as { current: string }).current
      const published = (JSON.parse(fs.readFileSync(path.join(dir, 'keyset.public.json'), 'utf8')) as { keys: { kid: string }[] }).keys
      looks++
      if (!published.some((k) => k.kid === current)) unpublished.add(current)
      await new Promise((resolve) => setImmediate(resolve))
    }
    for (const run of await runs) if (run.code !== 0) assert.match(run.stderr, CONFLICT_LINE)
    assert.ok(looks > 0)
    assert.deepEqual([...unpublished], [], `the keyset signed with a key its projection lacked (${looks} looks)`)
  })
})
