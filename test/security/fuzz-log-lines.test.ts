// Property: whatever log lines `cbc-jwt failures` is given — hostile client ids, claimed ids,
// addresses and kids (ESC/CSI/OSC sequences, C0 and C1 controls, bidi overrides, zero-width
// characters, lone surrogates), wrong types, hostile kubectl prefixes, cut or invalid JSON, raw
// escapes, lines past the 64 KiB bound — nothing raw reaches the terminal: the table, the
// summary and `--json` hold only printable ASCII (and the table's own "…"), it exits 0, and
// `--json` still carries every client id exactly.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import fc from 'fast-check'
import { coverage, fuzzParameters, hostileLogLine } from '../support/fuzz.js'
import { cbcJwt } from '../ops/cli/cli.js'

/** What a terminal may be shown: tab, line feed, printable ASCII, and the table's ellipsis. */
const TERMINAL_SAFE = /^[\t\n\x20-\x7e\u2026]*$/

/** The first character that is not terminal-safe, for the failure message. */
function firstUnsafe(text: string): string {
  for (let i = 0; i < text.length; i++) {
    if (!TERMINAL_SAFE.test(text[i]!))
      return `U+${text.charCodeAt(i).toString(16).padStart(4, '0')} at ${i}: ${JSON.stringify(text.slice(Math.max(0, i - 40), i + 10))}`
  }
  return 'none'
}

describe('fuzz: hostile log lines into cbc-jwt failures', () => {
  it('the table, the summary and --json hold only terminal-safe text; --json carries the ids exactly', async () => {
    const counts = { cases: 0, lines: 0, rows: 0, escapedIds: 0 }
    await fc.assert(
      fc.asyncProperty(fc.array(hostileLogLine(), { minLength: 1, maxLength: 20 }), async (lines) => {
        counts.cases++
        counts.lines += lines.length
        const input = lines.join('\n')
        const table = await cbcJwt(['failures', '--top', '0', '-'], { input })
        assert.equal(table.code, 0, table.stderr)
        assert.match(table.stdout, TERMINAL_SAFE, `table: ${firstUnsafe(table.stdout)}`)
        assert.match(table.stderr, TERMINAL_SAFE, `stderr: ${firstUnsafe(table.stderr)}`)

        const json = await cbcJwt(['failures', '--json', '-'], { input })
        assert.equal(json.code, 0, json.stderr)
        assert.match(json.stdout, /^[\t\n\x20-\x7e]*$/, `--json: ${firstUnsafe(json.stdout)}`)
        assert.match(json.stderr, TERMINAL_SAFE, `--json stderr: ${firstUnsafe(json.stderr)}`)
        const rows = JSON.parse(json.stdout) as Array<{ client_id: string | null }>
        counts.rows += rows.length
        for (const row of rows) {
          if (row.client_id === null) continue
          // The exact id, decoded from its escapes: it is in the input as the service wrote it.
          assert.ok(input.includes(JSON.stringify(row.client_id).slice(1, -1)), `--json changed the id ${JSON.stringify(row.client_id)}`)
          if (!/^[\x21-\x7e]*$/.test(row.client_id)) counts.escapedIds++
        }
      }),
      fuzzParameters(60),
    )
    coverage('failures-log-lines', counts)
    assert.ok(counts.rows > 0, 'no case produced a row: the generator no longer reaches the tally')
  })
})
