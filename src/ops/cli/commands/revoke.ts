import { setTimeout as sleep } from 'node:timers/promises'
import { RefusedError, UsageError } from '../../../lib/errors.js'
import { MAX_REVOCATION_VALUE_CHARS, ruleTarget, type KeysetDocument, type RevocationKind } from '../../../lib/keyset/document.js'
import { toRfc3339 } from '../../../lib/keyset/generate.js'
import { ROTATION_POLICY } from '../../rotation/policy.js'
import { setRevokedBefore } from '../../rotation/revoke.js'
import { revokeTargets } from '../../rotation/revocations.js'
import { updateKeyset, type KeysetMutation } from '../../rotation/update-keyset.js'
import { projectedFrom } from '../../projection/targets.js'
import { KEYSET_OPTIONS, holdsToken, parseCommandArgs, quotedArgument, rejectFlags, unexpectedArgument } from '../args.js'
import { CONTAINMENT_HELP, confirmContainment, containmentFleet, recordThenConfirm, requireConfirmable } from '../confirm-containment.js'
import { FLEET_OPTIONS } from '../fleet-flags.js'
import type { CliContext } from '../context.js'
import { AUDIT_HELP, AUDIT_OPTIONS, openAuditTrail } from '../audit.js'
import { closeSource, openKeysetSource } from '../keyset-source.js'
import { reportUpdate } from '../report.js'
import { ruleLifetime, serviceSettings } from '../settings.js'
import { parseTime } from '../time.js'
import type { Command } from './command.js'
import { listRevocations } from './revoke-list.js'
import { readTokenIds } from './revoke-stdin.js'

const OPTIONS = {
  ...KEYSET_OPTIONS,
  'issued-before': { type: 'string' },
  'client-id': { type: 'string', multiple: true },
  subject: { type: 'string', multiple: true },
  jti: { type: 'string', multiple: true },
  'expires-at': { type: 'string' },
  'max-token-ttl': { type: 'string' },
  list: { type: 'boolean' },
  json: { type: 'boolean' },
  force: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  wait: { type: 'string' },
  ...FLEET_OPTIONS,
  ...AUDIT_OPTIONS,
} as const

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values']

/** Which flag names which kind of rule. */
const TARGET_FLAGS = { 'client-id': 'client_id', subject: 'sub', jti: 'jti' } as const satisfies Record<string, RevocationKind>

export const revokeCommand: Command = {
  name: 'revoke',
  summary: "reject tokens: all issued before a time, or one client's, one subject's, one token (--list shows the rules)",
  help: `Usage: cbc-jwt revoke --issued-before TIME|now                    [KEYSET] [options]
       cbc-jwt revoke --client-id ID --issued-before TIME|now       [KEYSET] [options]
       cbc-jwt revoke --subject SUB --issued-before TIME|now        [KEYSET] [options]
       cbc-jwt revoke --jti ID [--expires-at TIME]                  [KEYSET] [options]
       cbc-jwt revoke --jti - < ids.txt                             [KEYSET] [options]
       cbc-jwt revoke --list [--json]                               [KEYSET]
KEYSET: - (stdin/stdout) | --keyset-file PATH | --backend file|vault|kubernetes

Every matching token is rejected with reason "revoked" on every replica that loads the keyset
(cached acceptances included), whatever key signed it.

  --issued-before alone   sets revoked_before: every token of this keyset issued earlier, of
                          every client (the runbook's "we don't know who"); a trusted
                          issuer's tokens (CBC_JWT_TRUSTED_ISSUERS) are not covered
  --client-id ID          only that client's tokens (client_id claim, else azp) issued
                          before --issued-before; repeat for several clients
  --subject SUB           only that subject's (sub) tokens issued before --issued-before
  --jti ID                that one token (jti claim); repeat, or "--jti -" to read ids from
                          stdin, one a line (blank lines skipped)
  --list                  print the rules in force (--json: as a JSON array), write nothing

A rule is dropped by the next write once no token it matches can still be valid: a jti rule
after its expires_at, a client or subject rule after issued_before + the max token TTL (plus
the clock tolerance). At most 10000 rules: a command that would pass that exits 1.

Options:
  --issued-before T  RFC 3339 time (2026-11-25T20:00:00Z) or "now"; a time inside a second
                     counts to that second's end (tokens carry iat in whole seconds)
  --expires-at T     with --jti: when the token expires — its exp in seconds (X-Auth-Expires)
                     or an RFC 3339 time (inside a second: to its end); default, and at
                     most, now + the max token TTL (+ twice the clock tolerance), which
                     outlasts any token alive now
  --max-token-ttl D  longest token lifetime issued (env CBC_JWT_MAX_TOKEN_TTL, default 24h)
  --force            allow a time more than a minute in the future, or moving a revocation
                     back (which makes revoked tokens valid again)
  --dry-run          print what would change (how many rules, which), write nothing
${CONTAINMENT_HELP}
${AUDIT_HELP}
  -h, --help         this help

Exit status: 0 done, 1 refused / invalid keyset / backend error / too many rules, 2 bad usage
(bad or future time, bad id).`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values, positionals } = parseCommandArgs('revoke', args, OPTIONS, { max: 1, what: '- (stdin/stdout)' })
    if (positionals[0] !== undefined && positionals[0] !== '-') throw new UsageError(`revoke: ${unexpectedArgument(positionals[0])}`)
    if (values.list) {
      rejectFlags(
        values,
        [
          'issued-before',
          'client-id',
          'subject',
          'jti',
          'expires-at',
          'force',
          'dry-run',
          'actor',
          'reason',
          'audit-log',
          'wait',
          'prometheus',
          'selector',
          'replica',
        ],
        '--list',
      )
      return listRevocations(ctx, openKeysetSource(ctx, values, positionals), { json: values.json === true, ruleLifetime: ruleLifetime(ctx.env, values) })
    }
    rejectFlags(values, ['json'], 'revoke (without --list)')
    const now = ctx.now()
    const { mutation, headline, command, targets } = await plan(ctx, values, positionals, now)
    const confirm = containmentFleet(ctx.env, values)
    const audit = openAuditTrail(ctx, command, values, { dryRun: values['dry-run'] === true })
    const source = openKeysetSource(ctx, values, positionals)
    try {
      const dryRun = values['dry-run'] === true
      if (confirm && !dryRun) requireConfirmable(source)
      // A projection of a private keyset: the rule would be gone at that keyset's next write.
      // Vault's is found by one read of the path it is the projection of (`…-public` → `…`).
      const vaultOwner = await source.projectionOwner?.()
      const onOwnDocument: KeysetMutation = (doc, keyset, projection) => {
        const owner = keyset.signing ? undefined : source.file !== undefined ? projectedFrom(source.file, ctx.env) : vaultOwner
        if (owner !== undefined) {
          throw new RefusedError(
            `${source.backend.location} is the verification projection of ${owner}: revoke there (its every write updates this projection); a rule written here would be lost at its next write`,
          )
        }
        return mutation(doc, keyset, projection)
      }
      const outcome = await updateKeyset(source.backend, onOwnDocument, {
        now: ctx.now,
        dryRun,
        ruleLifetime: ruleLifetime(ctx.env, values),
        projections: source.projections(),
      })
      await reportUpdate(ctx, source, outcome, { headline: headline(outcome.after.revoked_before), dryRun })
      // A rule is in force on a replica once its newest rule is at least this write's.
      const rulesCreatedAt = targets === undefined ? undefined : newestRuleOf(outcome.after, targets)
      return await recordThenConfirm(
        () => {
          if (outcome.written) audit.record({ location: source.backend.location, before: outcome.before, after: outcome.after })
        },
        confirm && !dryRun
          ? () =>
              confirmContainment(ctx, source, confirm.fleet, { before: outcome.before, after: outcome.after, rotated: false, rulesCreatedAt }, confirm.waitMs)
          : undefined,
      )
    } finally {
      audit.close()
      await closeSource(source)
    }
  },
}

/**
 * Returns once `ms` have passed on the monotonic clock. A timer may fire up to a millisecond
 * early by the clocks it is measured against: `now` would then write `revoked_before` before
 * the second it names has ended, and a token issued after the command returned, in that
 * second, would be revoked. Real time even under a pinned clock (`CBC_JWT_NOW`), which never moves.
 */
async function waitFor(ms: number): Promise<void> {
  const until = performance.now() + ms
  for (let left = ms; left > 0; left = until - performance.now()) await sleep(Math.ceil(left))
}

/** Checks every flag before anything is read, and builds the change. */
async function plan(ctx: CliContext, values: Values, positionals: string[], now: number) {
  const given = (Object.keys(TARGET_FLAGS) as Array<keyof typeof TARGET_FLAGS>).filter((f) => values[f] !== undefined)
  if (given.length > 1) throw new UsageError(`revoke: choose one of --${given.join(', --')} per command`)
  const flag = given[0]
  const force = values.force === true
  if (flag === 'jti') {
    rejectFlags(values, ['issued-before'], '--jti (a token id needs no time; --expires-at bounds the rule)')
    // Nothing to force: a token id is revoked whatever its time, and a rule for it is only ever kept longer.
    rejectFlags(values, ['force'], '--jti')
    const ids = values.jti!
    let list = ids.filter((id) => id !== '-')
    if (ids.includes('-')) {
      if (positionals.includes('-') || values['keyset-file'] === '-')
        throw new UsageError('--jti - reads ids from stdin, so the keyset cannot come from stdin too (use --keyset-file PATH or --backend)')
      list = [...list, ...(await readTokenIds(ctx.stdin))]
    }
    for (const id of list) {
      // A whole token where its jti belongs would be a rule that matches nothing, written without a word.
      if (holdsToken(id)) throw new UsageError('--jti: a token (not shown), not a token id: give its jti claim (cbc-jwt token verify - prints the claims)')
      checkValue('--jti', id)
    }
    if (list.length === 0) throw new UsageError('--jti -: no token ids on stdin')
    const life = ruleLifetime(ctx.env, values)
    // No token alive now outlives this (iat at most now + the tolerance, exp − iat at most the max
    // TTL, exp honoured up to the tolerance): the default, and the bound of a given time.
    const latestExpiryMs = now + life.maxTokenTtlMs + 2 * life.clockToleranceMs + 1000
    let expiresAtMs = latestExpiryMs
    if (values['expires-at'] !== undefined) {
      // The token's exp as it comes (X-Auth-Expires, a NumericDate in whole seconds), or a time.
      const raw = values['expires-at'].trim()
      const at = /^\d{1,11}$/.test(raw) ? Number(raw) * 1000 : parseTime(raw, now, { allowNow: false })
      if (at === undefined)
        throw new UsageError(
          `--expires-at: ${quotedArgument(raw)} is not an RFC 3339 time (e.g. 2026-11-26T20:00:00Z) nor a token's exp in seconds (e.g. 1796342400)`,
        )
      if (at <= now) throw new UsageError(`--expires-at ${toRfc3339(new Date(at))} is past: no token that expires then can still be valid`)
      // A later time (9999-12-31) would keep a rule that can match nothing for good. A time
      // inside a second counts to that second's end (the document holds whole seconds): cut
      // to its start, the rule would be dropped before a token expiring then stops verifying.
      expiresAtMs = Math.min(Math.ceil(at / 1000) * 1000, latestExpiryMs)
    }
    const mutation: KeysetMutation = (doc) => revokeTargets(doc, { kind: 'jti', values: list, expiresAtMs, nowMs: now, force: false })
    return {
      mutation,
      headline: () => `${list.length === 1 ? 'token' : `${new Set(list).size} tokens`} revoked by jti`,
      command: 'revoke --jti',
      targets: { kind: 'jti' as const, values: list },
    }
  }
  rejectFlags(values, ['expires-at'], flag === undefined ? 'revoke --issued-before' : `--${flag}`)
  const raw = values['issued-before']
  if (raw === undefined) {
    throw new UsageError(
      flag === undefined ? 'revoke: --issued-before TIME|now is required (or --jti ID, or --list)' : `revoke: --${flag} needs --issued-before TIME|now`,
    )
  }
  const asked = parseTime(raw, now)
  if (asked === undefined) throw new UsageError(`--issued-before: ${quotedArgument(raw)} is not an RFC 3339 time (e.g. 2026-11-25T20:00:00Z) or "now"`)
  // A token's `iat` is in whole seconds: a time inside a second is taken to that second's end,
  // so a token issued earlier in the same second is revoked too (rounded down, it stayed valid
  // to its `exp`). For `now` the command waits for that end before it writes, so a token issued
  // after the command returns is not revoked.
  const at = Math.ceil(asked / 1000) * 1000
  if (raw.trim() === 'now' && at > now) await waitFor(at - now)
  if (at > now + ROTATION_POLICY.futureRevocationSlackMs && !force) {
    throw new UsageError(
      `--issued-before ${toRfc3339(new Date(at))} is in the future: every token issued until then, new ones included, would be rejected (use --force if you mean it)`,
    )
  }
  if (flag === undefined) {
    // revoked_before is about the keyset's own tokens: a trusted issuer's (CBC_JWT_TRUSTED_ISSUERS)
    // stay valid, which an operator who meant "every token" must be told, with what does cut them.
    const trusted = serviceSettings(ctx.env).trustedIssuers.length
    const mutation: KeysetMutation = (doc) => {
      const result = setRevokedBefore(doc, { issuedBeforeMs: at, force })
      if (trusted > 0 && result.notes.length > 0) {
        result.notes.push(
          `the ${trusted} trusted issuer(s) of CBC_JWT_TRUSTED_ISSUERS are not covered: revoked_before is about this keyset's tokens; cut one of their clients or subjects off with --client-id or --subject`,
        )
      }
      return result
    }
    return {
      mutation,
      headline: (revokedBefore: string | undefined) => `tokens issued before ${revokedBefore} revoked`,
      command: 'revoke',
      targets: undefined,
    }
  }
  const kind = TARGET_FLAGS[flag]
  const names = values[flag]!
  for (const name of names) checkValue(`--${flag}`, name)
  const mutation: KeysetMutation = (doc) => revokeTargets(doc, { kind, values: names, issuedBeforeMs: at, nowMs: now, force })
  const who = flag === 'client-id' ? 'client' : 'subject'
  const time = toRfc3339(new Date(at))
  return {
    mutation,
    headline: () => `tokens of ${names.length === 1 ? `one ${who}` : `${new Set(names).size} ${who}s`} issued before ${time} revoked`,
    command: `revoke --${flag}`,
    targets: { kind, values: names },
  }
}

/**
 * `created_at` (Unix seconds) of the newest rule naming one of `targets` in the document just
 * written — for `--jti -`, the newest of the batch; a rule already in force as asked keeps its
 * time. The newest rule of all when none names them.
 */
function newestRuleOf(doc: KeysetDocument, targets: { kind: RevocationKind; values: readonly string[] }): number {
  const names = new Set(targets.values)
  let newest = 0
  let newestOfAll = 0
  for (const rule of doc.revocations ?? []) {
    const at = Date.parse(rule.created_at) / 1000
    newestOfAll = Math.max(newestOfAll, at)
    const target = ruleTarget(rule)
    if (target.kind === targets.kind && names.has(target.value)) newest = Math.max(newest, at)
  }
  return newest > 0 ? newest : newestOfAll
}

/**
 * What a rule can name: 1–256 characters without control characters (as the keyset schema says).
 * `token issue` checks its --sub and --client-id with it too: a token names only what a rule can.
 */
export function checkValue(flag: string, value: string): void {
  if (value.length === 0 || value.length > MAX_REVOCATION_VALUE_CHARS || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new UsageError(`${flag}: an id must be 1–${MAX_REVOCATION_VALUE_CHARS} characters without control characters`)
  }
}
