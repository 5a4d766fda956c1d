import { ruleTarget } from '../../../lib/keyset/document.js'
import { asciiJson } from '../../../lib/logging/sanitize.js'
import { MAX_REVOCATION_RULES } from '../../../lib/keyset/document.js'
import { ruleDropsAt, type RuleLifetime } from '../../rotation/revocations.js'
import { println, type CliContext } from '../context.js'
import { readKeyset, type KeysetSource } from '../keyset-source.js'

/**
 * `revoke --list`: the rules of the stored keyset and its `revoked_before`, read-only. A rule
 * no valid token can match any more is still listed (the next write drops it), marked so.
 * Values are printed as they are when printable ASCII, JSON-quoted otherwise, with every
 * character outside printable ASCII escaped (a rule's value may come from a token: a C1 control
 * or a bidi override must not reach the terminal raw).
 */
export async function listRevocations(ctx: CliContext, source: KeysetSource, opts: { json: boolean; ruleLifetime: RuleLifetime }): Promise<number> {
  const now = ctx.now()
  const { keyset } = await readKeyset(source, now)
  const doc = keyset.document
  const rules = doc.revocations ?? []
  if (opts.json) {
    println(ctx.stdout, asciiJson(rules, 2))
    return 0
  }
  const life = opts.ruleLifetime
  const rows = rules.map((rule) => {
    const { kind, value } = ruleTarget(rule)
    const time = 'jti' in rule ? `until ${rule.expires_at}` : `issued before ${rule.issued_before}`
    const spent = ruleDropsAt(rule, life) < now ? '  (no longer matches a valid token: the next write drops it)' : ''
    return [kind, /^[\x21-\x7e]+$/.test(value) ? value : asciiJson(value), time, `${rule.created_at}${spent}`]
  })
  if (rows.length > 0) {
    const header = ['KIND', 'VALUE', 'REVOKES', 'CREATED']
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
    const fmt = (cells: string[]) =>
      cells
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()
    println(ctx.stdout, fmt(header))
    for (const row of rows) println(ctx.stdout, fmt(row))
  }
  println(ctx.stdout, `${rules.length} rule(s) in force (at most ${MAX_REVOCATION_RULES}); revoked_before ${doc.revoked_before ?? 'none'}`)
  return 0
}
