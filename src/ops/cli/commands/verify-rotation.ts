import { setTimeout as sleep } from 'node:timers/promises'
import { bearerCredential } from '../../../lib/core/bearer.js'
import { CbcJwtError, UsageError } from '../../../lib/errors.js'
import { fleetChecklist, type CheckItem } from '../../fleet/checklist.js'
import type { FleetSource } from '../../fleet/fleet.js'
import { LEGACY_CUT_OFF, get, legacyTokenCutOff, reasonOf, runInstanceChecklist } from '../../fleet/instance-checklist.js'
import { fleetUrl } from '../../fleet/fleet-url.js'
import { projectionDrift } from '../../projection/publish.js'
import { durationFlag, parseCommandArgs, quotedArgument } from '../args.js'
import { println, readTokenFromStdin, type CliContext } from '../context.js'
import { FLEET_HELP, FLEET_OPTIONS, fleetFromFlags } from '../fleet-flags.js'
import { closeSource, openKeysetSource, type KeysetSource } from '../keyset-source.js'
import { parseTime } from '../time.js'
import type { Command } from './command.js'
import { asciiJson } from '../../../lib/logging/sanitize.js'

const OPTIONS = {
  url: { type: 'string' },
  'previous-kid': { type: 'string', multiple: true },
  'legacy-token': { type: 'string' },
  compromised: { type: 'boolean' },
  'revoked-before': { type: 'string' },
  ...FLEET_OPTIONS,
  wait: { type: 'string' },
  'max-age': { type: 'string' },
  json: { type: 'boolean' },
  projection: { type: 'boolean' },
  'keyset-file': { type: 'string' },
  backend: { type: 'string' },
} as const

const DEFAULT_MAX_AGE_MS = 10 * 60_000
const RETRY_INTERVAL_MS = 1000
/** A detail names every replica that failed: long, but bounded. */
const MAX_DETAIL_CHARS = 20_000

export const verifyRotationCommand: Command = {
  name: 'verify-rotation',
  summary: "run the runbook's post-rotation checklist against a live instance",
  help: `Usage: cbc-jwt verify-rotation (--url URL | --prometheus URL [--selector S]... | --replica URL...)
                               [--previous-kid KID...] [--legacy-token T] [--compromised [--revoked-before TIME]]
                               [--projection [--keyset-file PATH | --backend file|vault|kubernetes]]
                               [--wait DUR] [--max-age DUR] [--json]

Runs the runbook's "Verification Checklist After Rotation" against one instance (point URL
at a single pod, e.g. through kubectl port-forward: /metrics and /v1/keys must come from
the same process):
  1. active key:     /metrics has exactly one cbc_jwt_active_key_age_seconds series, its kid
                     is not --previous-kid, its age <= --max-age
  2. keys loaded:    cbc_jwt_keys_loaded equals the verifying keys of /v1/keys (>= 2, the
                     previous kid among them, when --previous-kid is given)
  3. legacy token:   --legacy-token (signed by the previous key) gets 200 from /v1/whoami
                     (with --compromised: 401 unknown_kid or revoked; skipped when not given)
  4. backend errors: cbc_jwt_backend_errors_total sums to 0
  5. rotations:      cbc_jwt_key_rotations_total >= 1 (runbook JWTKeyAgeExceeded step 3;
                     skipped without --previous-kid)
Each item is printed with ✓ (pass), ✗ (fail) or - (skipped) and the figure seen.

With --prometheus or --replica, every replica is checked as well:
  replicas up:       every target of the selector is up / every replica answers /v1/keys
  one current key:   the same current kid on every replica, not a --previous-kid
  previous key verifies everywhere   (routine: legacy tokens keep working on every replica)
  previous keys verify nowhere       (--compromised: none of the --previous-kid anywhere)
  same revoked_before everywhere     (--compromised: in force, >= --revoked-before, everywhere)
With --replica, the legacy token is also sent to every replica's /v1/whoami (200 expected;
401 unknown_kid or revoked with --compromised).

With --projection, the keyset (--keyset-file, --backend, or the configured backend) is read
and compared with its published verification projection(s), the same comparison as
keyset validate --projection:
  projection in sync: each projection is exactly the keyset without private keys (verifiers
                     that read it have every key and revocation the rotation wrote)

Options:
  --url URL          base URL of the instance, e.g. http://localhost:8000 (required)
  --previous-kid KID the kid that was current before the rotation (repeatable: with
                     --compromised, give every kid of the old keyset)
  --legacy-token T   a token signed before the rotation (by a --previous-kid), still valid
                     (- reads it from stdin: on the command line every local user sees it;
                     an Authorization value, "Bearer T", is taken as its token)
  --compromised      check an emergency rotation: previous keys no longer verify, legacy
                     tokens are rejected, revoked_before is in force
  --revoked-before T with --compromised: the revoked_before expected at least (RFC 3339)
${FLEET_HELP}
  --wait DUR         retry until every item passes or DUR is up (default 0: check once)
  --max-age DUR      "age close to 0" means at most this (default 10m). The age is the key's
                     since created_at: after "rotate --promote" or the CronJob the key was
                     created at --stage, at least the propagation window earlier (days with
                     the CronJob), so 10m fails by design — pass the key's age (cbc-jwt status)
  --projection       also check the verification projection(s) against the keyset
  --keyset-file PATH, --backend B
                     with --projection: where the keyset is (default: the configured backend)
  --json             print {"ok": bool, "items": [{"name", "result", "detail"}]}
  -h, --help         this help

Exit status: 0 every item passed (or was skipped), 1 an item failed, 2 bad usage.`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values } = parseCommandArgs('verify-rotation', args, OPTIONS)
    const fleet = fleetFromFlags(ctx.env, values)
    if (values.url === undefined && !fleet)
      throw new UsageError('verify-rotation: --url URL is required (or --prometheus URL, or --replica URL for every replica)')
    const base = values.url === undefined ? undefined : fleetUrl('--url', values.url, 'http://localhost:8000')
    const compromised = values.compromised === true
    const previousKids = values['previous-kid'] ?? []
    if (compromised && previousKids.length === 0) throw new UsageError('verify-rotation --compromised needs --previous-kid (every kid of the old keyset)')
    let revokedAtLeast: number | undefined
    if (values['revoked-before'] !== undefined) {
      if (!compromised) throw new UsageError('--revoked-before applies to --compromised')
      const at = parseTime(values['revoked-before'], ctx.now())
      if (at === undefined) throw new UsageError(`--revoked-before: ${quotedArgument(values['revoked-before'])} is not an RFC 3339 time`)
      revokedAtLeast = at / 1000
    }
    const waitMs = durationFlag('wait', values.wait) ?? 0
    const maxAgeMs = durationFlag('max-age', values['max-age']) ?? DEFAULT_MAX_AGE_MS
    const legacyToken = legacyTokenOf(values['legacy-token'] === '-' ? await readTokenFromStdin(ctx.stdin, '--legacy-token -') : values['legacy-token'])
    if (legacyToken !== undefined && previousKids.length > 0) await requireSignedByPrevious(legacyToken, previousKids)
    if (!values.projection && (values['keyset-file'] !== undefined || values.backend !== undefined))
      throw new UsageError('--keyset-file and --backend apply to --projection')
    const source = values.projection ? openKeysetSource(ctx, values) : undefined
    if (source?.streamsDocument) throw new UsageError('verify-rotation --projection reads the configured backend or --keyset-file, not -')
    const check = async (): Promise<CheckItem[]> => [
      ...(base ? await runInstanceChecklist({ base: base.href.replace(/\/+$/, ''), previousKids, legacyToken, maxAgeMs, compromised }) : []),
      ...(fleet
        ? await runFleetChecklist(
            fleet,
            { previousKids, compromised, legacyToken, ...(revokedAtLeast !== undefined ? { revokedAtLeast } : {}) },
            values.replica ?? [],
          )
        : []),
      ...(source ? [await projectionItem(source, ctx.now())] : []),
    ]
    // Wall-clock deadline: CBC_JWT_NOW pins keyset time, not how long to keep asking.
    const deadline = Date.now() + waitMs
    let items: CheckItem[]
    try {
      items = await check()
      while (items.some((i) => i.result === 'fail') && Date.now() + RETRY_INTERVAL_MS <= deadline) {
        await sleep(RETRY_INTERVAL_MS)
        items = await check()
      }
    } finally {
      if (source) await closeSource(source)
    }
    const failed = items.filter((i) => i.result === 'fail')
    if (values.json) {
      println(ctx.stdout, asciiJson({ ok: failed.length === 0, url: base?.href.replace(/\/+$/, '') ?? null, fleet: fleet?.description ?? null, items }, 2))
    } else {
      for (const [i, item] of items.entries()) {
        // A detail quotes what the instances answered (kids, reasons): foreign text, escaped.
        println(
          ctx.stdout,
          // Escaped where it came in (the checklists escape what an instance or Prometheus sends,
          // once: a second pass would double every backslash); bounded here.
          `${item.result === 'pass' ? '✓' : item.result === 'fail' ? '✗' : '-'} ${i + 1}. ${item.name}: ${bounded(item.detail, MAX_DETAIL_CHARS)}`,
        )
      }
      println(ctx.stdout, failed.length === 0 ? 'rotation verified' : `rotation NOT verified: ${failed.map((f) => f.name).join(', ')} failed`)
    }
    return failed.length === 0 ? 0 : 1
  },
}

/** The fleet items; a fleet that cannot be read at all fails the first item (and is retried with --wait). */
async function runFleetChecklist(
  fleet: FleetSource,
  o: { previousKids: readonly string[]; compromised: boolean; legacyToken: string | undefined; revokedAtLeast?: number },
  replicaUrls: readonly string[],
): Promise<CheckItem[]> {
  let items: CheckItem[]
  try {
    items = fleetChecklist(await fleet.read(), o)
  } catch (err) {
    if (!(err instanceof CbcJwtError)) throw err
    return [{ name: 'replicas up', result: 'fail', detail: err.message }]
  }
  if (o.legacyToken !== undefined && replicaUrls.length > 0) {
    const expected = o.compromised ? 401 : 200
    const answers = await Promise.all(
      replicaUrls.map(async (u) => ({ u, r: await get(`${u.replace(/\/+$/, '')}/v1/whoami`, { authorization: `Bearer ${o.legacyToken}` }) })),
    )
    const wrong = answers
      .filter(({ r }) => !r.ok || (o.compromised ? !legacyTokenCutOff(r) : r.status !== expected))
      .map(({ u, r }) => `${u} ${r.ok ? `${r.status}${reasonOf(r.text)}` : r.error}`)
    const name = o.compromised ? 'legacy token rejected everywhere' : 'legacy token accepted everywhere'
    items.push(
      wrong.length === 0
        ? { name, result: 'pass', detail: `${expected} from all ${replicaUrls.length} replicas` }
        : { name, result: 'fail', detail: `${o.compromised ? LEGACY_CUT_OFF : `expected ${expected}`}: ${wrong.join('; ')}` },
    )
  }
  return items
}

/** The projection item: the keyset read now, compared with each published projection. */
async function projectionItem(source: KeysetSource, now: number): Promise<CheckItem> {
  const name = 'projection in sync'
  try {
    const drift = await projectionDrift((await source.backend.read()).text, source.projections(), now)
    if (drift.length > 0) return { name, result: 'fail', detail: `${drift.join('; ')} (repair: run the command again, or rotate --auto)` }
    const locations = source.projections().map((p) => p.location)
    return { name, result: 'pass', detail: `${locations.join(', ')} ${locations.length === 1 ? 'matches' : 'match'} ${source.backend.location}` }
  } catch (err) {
    if (!(err instanceof CbcJwtError)) throw err
    return { name, result: 'fail', detail: err.message }
  }
}

function bounded(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}...` : text
}

/**
 * The legacy token as given, or the token of an Authorization value ("Bearer TOKEN", as a client
 * reports it): sent as given it would go out as "Bearer Bearer TOKEN", malformed on every replica.
 */
function legacyTokenOf(given: string | undefined): string | undefined {
  if (given === undefined || !/^bearer[ \t]/i.test(given.trim())) return given
  const credential = bearerCredential(given)
  if ('token' in credential) return credential.token
  throw new UsageError('--legacy-token: an Authorization value holds "Bearer" and one token')
}

/**
 * A legacy token signed by another key than the previous ones (the new key's, a token of
 * another keyset) proves nothing about tokens signed before the rotation: its 200 would pass
 * item 3, its `unknown_kid` the emergency check. Bad usage, before anything is asked. A token
 * whose header does not decode is left to the check, which reports its rejection.
 */
async function requireSignedByPrevious(token: string, previousKids: readonly string[]): Promise<void> {
  const { decodeProtectedHeader } = await import('jose')
  let kid: unknown
  try {
    kid = decodeProtectedHeader(token).kid
  } catch {
    return
  }
  if (typeof kid === 'string' && !previousKids.includes(kid)) {
    throw new UsageError(
      `--legacy-token is signed by kid ${quotedArgument(kid)}, not by a --previous-kid (${previousKids.map(quotedArgument).join(', ')}): give a token signed before the rotation`,
    )
  }
}
