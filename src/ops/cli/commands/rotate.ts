import { RefusedError, UsageError } from '../../../lib/errors.js'
import { formatDuration } from '../../../lib/duration.js'
import { ROTATION_POLICY } from '../../rotation/policy.js'
import { rotateCompromised, rotateNow } from '../../rotation/rotate.js'
import { requireKeyEverywhere } from '../../fleet/gate.js'
import { autoRotate, pickStaged, promoteStaged, stageKey } from '../../rotation/two-phase.js'
import { updateKeyset, type KeysetMutation } from '../../rotation/update-keyset.js'
import { KEYSET_OPTIONS, algFlag, durationFlag, parseCommandArgs, rejectFlags, unexpectedArgument } from '../args.js'
import type { CliContext } from '../context.js'
import { AUDIT_HELP, AUDIT_OPTIONS, openAuditTrail } from '../audit.js'
import { FLEET_HELP, FLEET_OPTIONS, fleetFromFlags } from '../fleet-flags.js'
import { closeSource, openKeysetSource } from '../keyset-source.js'
import { reportUpdate } from '../report.js'
import { CONTAINMENT_HELP, confirmContainment, containmentFleet, recordThenConfirm, requireConfirmable } from '../confirm-containment.js'
import { graceMs, propagationMs, ruleLifetime } from '../settings.js'
import type { Command } from './command.js'

const OPTIONS = {
  ...KEYSET_OPTIONS,
  stage: { type: 'boolean' },
  promote: { type: 'boolean' },
  auto: { type: 'boolean' },
  compromised: { type: 'boolean' },
  alg: { type: 'string' },
  grace: { type: 'string' },
  'max-token-ttl': { type: 'string' },
  propagation: { type: 'string' },
  every: { type: 'string' },
  kid: { type: 'string' },
  force: { type: 'boolean' },
  'fresh-key': { type: 'boolean' },
  wait: { type: 'string' },
  'dry-run': { type: 'boolean' },
  ...FLEET_OPTIONS,
  ...AUDIT_OPTIONS,
} as const

const MODES = ['stage', 'promote', 'auto', 'compromised'] as const
const FLEET_FLAGS = Object.keys(FLEET_OPTIONS)

export const rotateCommand: Command = {
  name: 'rotate',
  summary: 'rotate the signing key: at once, two-phase (--stage/--promote), scheduled (--auto) or emergency (--compromised)',
  help: `Usage: cbc-jwt rotate [- | --keyset-file PATH | --backend file|vault|kubernetes] [MODE] [options]

Modes:
  (none)             generate a key and make it current now; the old current key keeps
                     verifying for --grace; keys past not_after are pruned
  --stage            publish a new key that verifies but does not sign yet (a key staged
                     past the 7-day key-age SLA, or one a verification projection lacks,
                     is retired first; another is refused)
  --promote          make the staged key current; refused until it has been published for
                     the propagation window, unless --force; refused, unless --force, while
                     a verification projection lacks it (then it is published only now);
                     with --prometheus or --replica, refused until every replica verifies
                     with it (no time window then; the refusal says so when a projection
                     lacks it, as no replica will load it); refused for a key staged past
                     the 7-day SLA, unless --force
  --auto             for a CronJob, keeping a standby staged: prune; retire a staged key
                     older than --every - propagation window; promote the standby once it
                     has been staged for half of that, or at once when the current key is
                     due (age >= --every - propagation window), when it is published (the
                     window; with --prometheus or --replica: every replica verifies with
                     it); retire a standby a verification projection lacks;
                     stage a new standby whenever none is staged; idempotent
                     ("nothing to do" when nothing is due)
  --compromised      emergency: the standby (the staged key --auto keeps, if every
                     verification projection holds it) becomes current now — else a fresh
                     key —, every other key stops verifying now, tokens issued before now
                     are revoked (revoked_before), a new standby is staged

Options:
  --alg ALG          algorithm of the new key (default: the current key's)
  --grace DUR        how long the old current key keeps verifying (default: max(24h,
                     max token TTL)); below 24h or below the max token TTL is refused
  --max-token-ttl DUR  longest token lifetime the issuer uses (env CBC_JWT_MAX_TOKEN_TTL,
                     default 24h)
  --propagation DUR  how long a staged key must be published before promotion (default:
                     2 x CBC_JWT_REFRESH_INTERVAL_SECONDS + 90s = 150s)
  --every DUR        rotation period for --auto (default 6d, at most 7d)
  --kid KID          with --promote: which staged key, when there are several
  --force            with --promote: promote before the propagation window has passed, or
                     a key a verification projection lacks (this write publishes it first)
  --fresh-key        with --compromised: never promote the standby (the private keyset
                     itself leaked, standby included): a fresh key becomes current
  --dry-run          print what would change, write nothing (with -, stdout gets the input)
${FLEET_HELP}
                     (with --promote and --auto; a refusal names the replicas that lack the key)
With --compromised:
${CONTAINMENT_HELP}
${AUDIT_HELP}
  -h, --help         this help

Durations: 90s, 15m, 24h, 6d (combinable: 1h30m).
Exit status: 0 done or nothing to do, 1 refused / invalid keyset / backend error, 2 bad usage.`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values, positionals } = parseCommandArgs('rotate', args, OPTIONS, { max: 1, what: '- (stdin/stdout)' })
    if (positionals[0] !== undefined && positionals[0] !== '-') {
      throw new UsageError(`rotate: ${unexpectedArgument(positionals[0])} (use --keyset-file PATH, or - for stdin/stdout)`)
    }
    const modes = MODES.filter((m) => values[m])
    if (modes.length > 1) throw new UsageError(`rotate: choose one of --${modes.join(', --')}`)
    const mode = modes[0]
    const { mutation, headline, confirm } = plan(ctx, mode, values)
    const audit = openAuditTrail(ctx, mode === undefined ? 'rotate' : `rotate --${mode}`, values, { dryRun: values['dry-run'] === true })
    const source = openKeysetSource(ctx, values, positionals)
    try {
      const dryRun = values['dry-run'] === true
      if (confirm && !dryRun) requireConfirmable(source)
      // A one-step or emergency rotation also repairs a keyset whose current key has expired.
      const acceptExpiredCurrent = mode === undefined || mode === 'compromised'
      // Pointed at the projection by mistake: say so, rather than that the new key would be "mixed".
      const onSigningKeyset: KeysetMutation = (doc, keyset, projection) => {
        if (!keyset.signing) {
          throw new RefusedError(
            `${source.backend.location} is a verification keyset (no private key): rotate needs the private keyset, whose every write updates this projection`,
          )
        }
        return mutation(doc, keyset, projection)
      }
      const outcome = await updateKeyset(source.backend, onSigningKeyset, {
        now: ctx.now,
        dryRun,
        acceptExpiredCurrent,
        ruleLifetime: ruleLifetime(ctx.env, values),
        projections: source.projections(),
      })
      await reportUpdate(ctx, source, outcome, { headline: headline(outcome.after.current, outcome.before.current), dryRun })
      return await recordThenConfirm(
        () => {
          if (outcome.written) audit.record({ location: source.backend.location, before: outcome.before, after: outcome.after })
        },
        confirm && !dryRun
          ? () => confirmContainment(ctx, source, confirm.fleet, { before: outcome.before, after: outcome.after, rotated: true }, confirm.waitMs)
          : undefined,
      )
    } finally {
      audit.close()
      await closeSource(source)
    }
  },
}

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values']

/** Checks every flag of the mode before anything is read, and builds the change. */
function plan(ctx: CliContext, mode: (typeof MODES)[number] | undefined, values: Values) {
  const now = ctx.now()
  const alg = algFlag(values.alg)
  const rotated = (to: string, from: string) => (to === from ? 'no rotation' : `rotated ${from} → ${to}`)
  switch (mode) {
    case undefined: {
      rejectFlags(values, ['propagation', 'every', 'kid', 'force', 'fresh-key', 'wait', ...FLEET_FLAGS], 'rotate (without --promote/--auto)')
      const grace = graceMs(ctx.env, values)
      const mutation: KeysetMutation = (doc) => rotateNow(doc, { now, graceMs: grace, ...(alg ? { alg } : {}) })
      return { mutation, headline: rotated }
    }
    case 'stage': {
      rejectFlags(values, ['grace', 'max-token-ttl', 'propagation', 'every', 'kid', 'force', 'fresh-key', 'wait', ...FLEET_FLAGS], '--stage')
      const mutation: KeysetMutation = (doc, _keyset, projection) =>
        stageKey(doc, { now, ...(alg ? { alg } : {}), unpublished: (kid) => projection.lacking(doc, kid) })
      return { mutation, headline: () => 'staged a new key' }
    }
    case 'promote': {
      rejectFlags(values, ['alg', 'every', 'fresh-key', 'wait'], '--promote')
      const grace = graceMs(ctx.env, values)
      const fleet = fleetFromFlags(ctx.env, values)
      if (fleet) {
        rejectFlags(values, ['propagation', 'force'], '--promote gated on the replicas (--prometheus/--replica)')
        const mutation: KeysetMutation = async (doc, _keyset, projection) => {
          const kid = pickStaged(doc, values.kid).kid
          // The replicas decide; but a key the projection lacks reaches none of them, and
          // "run again once they have loaded it" would be run again for ever.
          const lacking = await projection.lacking(doc, kid)
          const next =
            lacking.length > 0
              ? `but the verification projection does not hold it (${lacking.join('; ')}), so they never will: stage a fresh key with rotate --stage (it retires this one, which never signed) and promote that one`
              : undefined
          const seen = await requireKeyEverywhere(fleet, kid, 'promote', next)
          const promoted = promoteStaged(doc, { now, graceMs: grace, propagationWindowMs: 0, kid })
          return { doc: promoted.doc, notes: [seen, ...promoted.notes] }
        }
        return { mutation, headline: rotated }
      }
      const window = propagationMs(ctx.env, values.propagation, { promotes: true })
      // Timed from created_at, which stands for its publication only while the projection the
      // verifiers read holds it: asked first (the replica gate above asks the verifiers instead).
      const mutation: KeysetMutation = async (doc, _keyset, projection) => {
        const kid = pickStaged(doc, values.kid).kid
        return promoteStaged(doc, {
          now,
          graceMs: grace,
          propagationWindowMs: window,
          force: values.force === true,
          kid,
          unpublished: await projection.lacking(doc, kid),
        })
      }
      return { mutation, headline: rotated }
    }
    case 'auto': {
      rejectFlags(values, ['kid', 'force', 'fresh-key', 'wait'], '--auto')
      const grace = graceMs(ctx.env, values)
      const window = propagationMs(ctx.env, values.propagation, { promotes: true })
      const every = durationFlag('every', values.every) ?? ROTATION_POLICY.everyMs
      if (every > ROTATION_POLICY.keyAgeSlaMs) {
        throw new UsageError(`--every ${values.every} is longer than the 7-day key-age SLA (JWTKeyAgeExceeded would fire)`)
      }
      if (every <= 2 * window) {
        throw new UsageError(`--every ${values.every} must be more than twice the propagation window (${formatDuration(window)})`)
      }
      const fleet = fleetFromFlags(ctx.env, values)
      const gate = fleet ? (kid: string) => requireKeyEverywhere(fleet, kid, 'promote') : undefined
      const mutation: KeysetMutation = (doc, _keyset, projection) =>
        autoRotate(doc, {
          now,
          everyMs: every,
          propagationWindowMs: window,
          graceMs: grace,
          ...(alg ? { alg } : {}),
          ...(gate ? { gate } : {}),
          unpublished: (kid) => projection.lacking(doc, kid),
        })
      return { mutation, headline: (to: string, from: string) => (to === from ? 'scheduled rotation' : `scheduled rotation: ${rotated(to, from)}`) }
    }
    case 'compromised': {
      rejectFlags(values, ['grace', 'max-token-ttl', 'propagation', 'every', 'kid', 'force'], '--compromised')
      const mutation: KeysetMutation = (doc, _keyset, projection) =>
        rotateCompromised(doc, { now, freshKey: values['fresh-key'] === true, ...(alg ? { alg } : {}), unpublished: (kid) => projection.lacking(doc, kid) })
      const confirm = containmentFleet(ctx.env, values)
      return { mutation, headline: (to: string, from: string) => `EMERGENCY rotation ${from} → ${to}`, confirm }
    }
  }
}
