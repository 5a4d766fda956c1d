import type { KeysetBackend } from '../../../lib/backends/backend.js'
import { BackendError, CasConflictError, KeysetInvalidError, RefusedError, UsageError, problemsInLine } from '../../../lib/errors.js'
import { keyStatus, type KeysetDocument } from '../../../lib/keyset/document.js'
import { loadKeyset, parseKeysetText } from '../../../lib/keyset/load.js'
import { describeChange, diffKeysets } from '../../rotation/diff.js'
import { KEYSET_OPTIONS, parseCommandArgs } from '../args.js'
import { AUDIT_HELP, AUDIT_OPTIONS, openAuditTrail } from '../audit.js'
import { println, type CliContext } from '../context.js'
import { closeSource, openKeysetSource } from '../keyset-source.js'
import { interimProjection, validDocument } from '../../projection/interim.js'
import { driftOf, projectionOf, type ProjectionState, readProjections, storedKids, writeProjections } from '../../projection/publish.js'
import { projectedFrom } from '../../projection/targets.js'
import { interimAhead, levelAfterWrite, oneChangeAtATime, projectionAhead, replaceInterimProjection, settleProjection } from '../../rotation/update-keyset.js'
import type { Command } from './command.js'

const OPTIONS = { ...KEYSET_OPTIONS, 'dry-run': { type: 'boolean' }, ...AUDIT_OPTIONS } as const

export const keysetRestoreCommand: Command = {
  name: 'keyset restore',
  summary: 'put the last good keyset back from its copy (kept apart, so it survives a deleted keyset), validated first',
  help: `Usage: cbc-jwt keyset restore [--backend file|vault|kubernetes] [--dry-run] [options]

Puts the last good keyset back after a write that bypassed cbc-jwt broke it (kubectl edit,
an old manifest applied, an empty pipeline), or after the keyset itself was deleted. Every
change cbc-jwt writes also stores the same validated document as a last good copy, in a place
of its own that survives the keyset's deletion: Kubernetes, the Secret cbc-jwt-last-good
(CBC_JWT_KUBERNETES_LAST_GOOD_SECRET, same namespace and key); Vault, the path
<CBC_JWT_VAULT_PATH>-last-good (CBC_JWT_VAULT_LAST_GOOD_PATH); a file, the sibling
<name>.last-good.json. This command copies it back.

The copy is validated first (schema and meaning, as keyset validate): an invalid copy is
refused and nothing is written. The write carries the version the keyset was read at: if
anyone changed it meanwhile it is refused, nothing is written, and it is not retried — look
at the keyset again and decide. A deleted keyset is created again (Kubernetes: that needs
\`create\` on secrets, an operator's right, not the CronJob's). Each restore prints a
keyset_changed audit line.

Options:
  --dry-run          validate the copy and print what would change, write nothing
${AUDIT_HELP}
  -h, --help         this help

Exit status: 0 restored (or already in place), 1 no copy / invalid copy / conflict / backend
error, 2 bad usage (a keyset on stdin has no copy).`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values, positionals } = parseCommandArgs('keyset restore', args, OPTIONS)
    const source = openKeysetSource(ctx, values, positionals)
    const { backend } = source
    try {
      if (!backend.readLastGood) throw new UsageError(withoutCopy(backend))
      const readCopy = backend.readLastGood.bind(backend)
      const audit = openAuditTrail(ctx, 'keyset restore', values, { dryRun: values['dry-run'] === true })
      const dryRun = values['dry-run'] === true
      try {
        // One change of the keyset at a time, as rotate and revoke (a file's update lock).
        return await oneChangeAtATime(
          backend,
          async () => {
            // The verification projection of a private keyset (a verifier's settings): the copy
            // beside it is that keyset's, private keys included, which its verifiers would read.
            const owner = source.file !== undefined ? projectedFrom(source.file, ctx.env) : await source.projectionOwner?.()
            if (owner !== undefined) {
              throw new RefusedError(
                `${backend.location} is the verification projection of ${owner}: restore that keyset (it repairs this projection too); a keyset restored here would give every verifier the signing key`,
              )
            }
            const copy = await readCopy()
            const now = ctx.now()
            let after: KeysetDocument
            try {
              after = loadKeyset(parseKeysetText(copy.text), now).document
            } catch (err) {
              if (!(err instanceof KeysetInvalidError)) throw err
              throw new RefusedError(`${copy.location} is not a valid keyset (${problemsInLine(err.problems)}); nothing was written`)
            }
            if (copy.current === copy.text) {
              // The keyset is in place; its projection may not be (deleted: JWTKeysetObjectGone).
              const projected = projectionOf(after)
              if ('text' in projected) {
                const states = await readProjections(source.projections())
                if (dryRun)
                  for (const drift of driftOf(states, projected.text))
                    println(ctx.stdout, `dry run, nothing written — would repair the verification projection: ${drift}`)
                else {
                  const repaired = await writeProjections(states, projected.text)
                  for (const location of repaired) println(ctx.stdout, `repaired the verification projection ${location}`)
                  if (repaired.length > 0) noteRepublishedStaged(ctx, states, after)
                }
              }
              println(ctx.stdout, `${backend.location} already holds the last good keyset (current ${after.current}); nothing written`)
              return 0
            }
            const before = validDocument(copy.current, now)
            println(
              ctx.stdout,
              `${dryRun ? 'dry run, nothing written — ' : ''}${backend.location} restored from ${copy.location}: current ${after.current}${before ? '' : copy.current === undefined ? ' (there was no keyset: it is created again)' : ' (the keyset there was invalid)'}`,
            )
            for (const change of before ? diffKeysets(before, after) : []) println(ctx.stdout, `  ${describeChange(change)}`)
            if (dryRun) return 0
            // The projection first: a key or a revocation the copy holds reaches verifiers first,
            // beside the keyset in force when the copy lacks the key that one signs with.
            const projected = projectionOf(after)
            const interim = before && 'text' in projected ? interimProjection(before, after) : undefined
            const states = 'text' in projected ? await readProjections(source.projections()) : []
            const published = 'text' in projected ? await writeProjections(states, (interim ?? projected).text) : []
            for (const location of published) println(ctx.stdout, `wrote the verification projection ${location}`)
            if (published.length > 0) noteRepublishedStaged(ctx, states, after)
            try {
              await backend.write(copy.text, copy.version)
            } catch (err) {
              if (err instanceof BackendError && err.reason === 'forbidden' && copy.version === null && backend.kind === 'kubernetes')
                err.message = `${err.message}; creating the deleted Secret needs \`create\` on secrets in its namespace (an operator's right; the CronJob has none)`
              // Not retried: whoever wrote meanwhile may have fixed it already. Look, then decide.
              if (!(err instanceof CasConflictError)) {
                if (err instanceof Error) err.message += interim ? interimAhead(published) : projectionAhead(published)
                throw err
              }
              // The writer's keyset is in force: the copy's projection would hide its keys.
              const settled = published.length > 0 ? await settleProjection(backend, source.projections(), ctx.now) : ''
              throw new CasConflictError(
                `${err.message}; ${published.length > 0 ? 'the keyset was not written' : 'nothing was written'}${settled} — look at the keyset again and run keyset restore if it still needs it`,
                { cause: err },
              )
            }
            // Another writer's projection may have replaced this one before the keyset write landed:
            // levelled here. An interim one is replaced outright by the stored keyset's own, which
            // covers that case too.
            const left = interim ? await replaceInterimProjection(backend, source.projections(), ctx.now) : undefined
            const levelled = interim ? undefined : await levelAfterWrite(backend, source.projections(), ctx.now)
            if (levelled !== undefined) println(ctx.stdout, `note: ${levelled}`)
            println(ctx.stdout, `wrote ${backend.location}`)
            audit.record({ location: backend.location, before, after })
            if (left === undefined) return 0
            println(ctx.stderr, `cbc-jwt: ${left}`)
            return 1
          },
          dryRun,
        )
      } finally {
        audit.close()
      }
    } finally {
      await closeSource(source)
    }
  },
}

/**
 * A staged key is taken as published since its `created_at` (rotate --promote's window, and
 * --compromised's standby "on every replica already"). One that a projection written here
 * lacked is published only now: said, so that its promotion waits for the replicas.
 */
function noteRepublishedStaged(ctx: CliContext, states: readonly ProjectionState[], restored: KeysetDocument): void {
  const heldEverywhere = (kid: string) => states.every((s) => s.stored !== undefined && storedKids(s.stored.text).has(kid))
  for (const key of restored.keys)
    if (keyStatus(restored, key) === 'staged' && !heldEverywhere(key.kid))
      println(
        ctx.stdout,
        `note: staged key ${key.kid} (created_at ${key.created_at}) was not in every verification projection and is published only now: before it signs (rotate --promote, or --compromised taking it as the standby), gate on the replicas (--prometheus or --replica) or wait the propagation window from now`,
      )
}

/** The one line for a source without a copy: what to do there instead. */
function withoutCopy(backend: KeysetBackend): string {
  return `keyset restore: ${backend.location} has no last good copy (a keyset on stdin has none); restore reads the configured backend or --keyset-file PATH, not -`
}
