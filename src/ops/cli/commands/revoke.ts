import { UsageError } from '../../../lib/errors.js'
import { toRfc3339 } from '../../../lib/keyset/generate.js'
import { ROTATION_POLICY } from '../../rotation/policy.js'
import { setRevokedBefore } from '../../rotation/revoke.js'
import { updateKeyset } from '../../rotation/update-keyset.js'
import { KEYSET_OPTIONS, parseCommandArgs } from '../args.js'
import type { CliContext } from '../context.js'
import { AUDIT_HELP, AUDIT_OPTIONS, openAuditTrail } from '../audit.js'
import { openKeysetSource } from '../keyset-source.js'
import { reportUpdate } from '../report.js'
import { parseTime } from '../time.js'
import type { Command } from './command.js'

const OPTIONS = {
  ...KEYSET_OPTIONS,
  'issued-before': { type: 'string' },
  force: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  ...AUDIT_OPTIONS,
} as const

export const revokeCommand: Command = {
  name: 'revoke',
  summary: 'reject every token issued before a time (sets revoked_before)',
  help: `Usage: cbc-jwt revoke --issued-before TIME|now [- | --keyset-file PATH | --backend file|vault|kubernetes] [options]

Sets revoked_before: every token whose iat is earlier is rejected with reason "revoked",
whatever key signed it (the runbook's "invalidate tokens issued before the spike").

Options:
  --issued-before T  RFC 3339 time (2026-11-25T20:00:00Z) or "now" (required)
  --force            allow a time more than a minute in the future, or moving an existing
                     revoked_before back (which makes revoked tokens valid again)
  --dry-run          print what would change, write nothing
${AUDIT_HELP}
  -h, --help         this help

Exit status: 0 done, 1 refused / invalid keyset / backend error, 2 bad usage (bad or future time).`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values, positionals } = parseCommandArgs('revoke', args, OPTIONS, { max: 1, what: '- (stdin/stdout)' })
    if (positionals[0] !== undefined && positionals[0] !== '-') throw new UsageError(`revoke: unexpected argument "${positionals[0]}"`)
    const raw = values['issued-before']
    if (raw === undefined) throw new UsageError('revoke: --issued-before TIME|now is required')
    const now = ctx.now()
    const at = parseTime(raw, now)
    if (at === undefined) throw new UsageError(`--issued-before: "${raw}" is not an RFC 3339 time (e.g. 2026-11-25T20:00:00Z) or "now"`)
    if (at > now + ROTATION_POLICY.futureRevocationSlackMs && values.force !== true) {
      throw new UsageError(
        `--issued-before ${toRfc3339(new Date(at))} is in the future: every token issued until then, new ones included, would be rejected (use --force if you mean it)`,
      )
    }
    const audit = openAuditTrail(ctx, 'revoke', values)
    const source = openKeysetSource(ctx, values, positionals)
    try {
      const dryRun = values['dry-run'] === true
      const outcome = await updateKeyset(source.backend, (doc) => setRevokedBefore(doc, { issuedBeforeMs: at, force: values.force === true }), {
        now: ctx.now,
        dryRun,
      })
      reportUpdate(ctx, source, outcome, { headline: `tokens issued before ${outcome.after.revoked_before} revoked`, dryRun })
      if (outcome.written) audit.record({ location: source.backend.location, before: outcome.before, after: outcome.after })
      return 0
    } finally {
      audit.close()
      await source.backend.close()
    }
  },
}
