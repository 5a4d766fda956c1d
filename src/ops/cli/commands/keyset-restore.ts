import type { KeysetBackend } from '../../../lib/backends/backend.js'
import { CasConflictError, KeysetInvalidError, RefusedError, UsageError, formatProblem } from '../../../lib/errors.js'
import type { KeysetDocument } from '../../../lib/keyset/document.js'
import { loadKeyset, parseKeysetText } from '../../../lib/keyset/load.js'
import { describeChange, diffKeysets } from '../../rotation/diff.js'
import { KEYSET_OPTIONS, parseCommandArgs } from '../args.js'
import { AUDIT_HELP, AUDIT_OPTIONS, openAuditTrail } from '../audit.js'
import { println, type CliContext } from '../context.js'
import { closeSource, openKeysetSource } from '../keyset-source.js'
import { projectionOf, readProjections, writeProjections } from '../../projection/publish.js'
import type { Command } from './command.js'

const OPTIONS = { ...KEYSET_OPTIONS, 'dry-run': { type: 'boolean' }, ...AUDIT_OPTIONS } as const

export const keysetRestoreCommand: Command = {
  name: 'keyset restore',
  summary: 'put the last good keyset back (Kubernetes: the copy every write keeps), validated first',
  help: `Usage: cbc-jwt keyset restore [--backend kubernetes] [--dry-run] [options]

Puts the last good keyset back after a write that bypassed cbc-jwt broke it (kubectl edit,
an old manifest applied, an empty pipeline). A Kubernetes Secret has no history: with
CBC_JWT_BACKEND=kubernetes every change cbc-jwt writes also stores the same validated
document under a second key of the Secret (CBC_JWT_KUBERNETES_LAST_GOOD_KEY, default
jwt-keyset-last-good), and this command copies it back to the keyset key.

The copy is validated first (schema and meaning, as keyset validate): an invalid copy is
refused and nothing is written. The write carries the resourceVersion both were read at:
if anyone changed the Secret meanwhile it is refused (409), nothing is written, and it is
not retried — look at the Secret again and decide. Each restore prints a keyset_changed
audit line. Vault keeps versions instead (vault kv rollback); a file has no copy.

Options:
  --dry-run          validate the copy and print what would change, write nothing
${AUDIT_HELP}
  -h, --help         this help

Exit status: 0 restored (or already in place), 1 no copy / invalid copy / conflict / backend
error, 2 bad usage or a backend without a last good copy.`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values, positionals } = parseCommandArgs('keyset restore', args, OPTIONS)
    const source = openKeysetSource(ctx, values, positionals)
    const { backend } = source
    try {
      if (!backend.readLastGood) throw new UsageError(withoutCopy(backend))
      const audit = openAuditTrail(ctx, 'keyset restore', values)
      try {
        const copy = await backend.readLastGood()
        const now = ctx.now()
        let after: KeysetDocument
        try {
          after = loadKeyset(parseKeysetText(copy.text), now).document
        } catch (err) {
          if (!(err instanceof KeysetInvalidError)) throw err
          throw new RefusedError(`${copy.location} is not a valid keyset (${err.problems.map(formatProblem).join('; ')}); nothing was written`)
        }
        if (copy.current === copy.text && values['dry-run'] !== true) {
          const projected = projectionOf(after)
          if ('text' in projected) {
            for (const location of await writeProjections(await readProjections(source.projections()), projected.text))
              println(ctx.stdout, `repaired the verification projection ${location}`)
          }
        }
        if (copy.current === copy.text) {
          println(ctx.stdout, `${backend.location} already holds the last good keyset (current ${after.current}); nothing written`)
          return 0
        }
        const before = validDocument(copy.current, now)
        const dryRun = values['dry-run'] === true
        println(
          ctx.stdout,
          `${dryRun ? 'dry run, nothing written — ' : ''}${backend.location} restored from ${copy.location}: current ${after.current}${before ? '' : ' (the keyset there was missing or invalid)'}`,
        )
        for (const change of before ? diffKeysets(before, after) : []) println(ctx.stdout, `  ${describeChange(change)}`)
        if (dryRun) return 0
        // The projection first: a key or a revocation the copy holds reaches verifiers first.
        const projected = projectionOf(after)
        if ('text' in projected) {
          for (const location of await writeProjections(await readProjections(source.projections()), projected.text))
            println(ctx.stdout, `wrote the verification projection ${location}`)
        }
        try {
          await backend.write(copy.text, copy.version)
        } catch (err) {
          // Not retried: whoever wrote meanwhile may have fixed it already. Look, then decide.
          if (!(err instanceof CasConflictError)) throw err
          throw new CasConflictError(`${err.message}; nothing was written — look at the keyset again and run keyset restore if it still needs it`, {
            cause: err,
          })
        }
        println(ctx.stdout, `wrote ${backend.location}`)
        audit.record({ location: backend.location, before, after })
        return 0
      } finally {
        audit.close()
      }
    } finally {
      await closeSource(source)
    }
  },
}

/** The one line for a backend without a copy: what to do there instead. */
function withoutCopy(backend: KeysetBackend): string {
  const head = `keyset restore: ${backend.location} has no last good copy (only CBC_JWT_BACKEND=kubernetes keeps one)`
  switch (backend.kind) {
    case 'vault':
      return `${head}; Vault keeps versions: list them with vault kv metadata get -mount=MOUNT PATH, then vault kv rollback -mount=MOUNT -version=N PATH`
    case 'stdio':
      return `${head}; restore reads the configured backend, not -`
    default:
      return `${head}; put your backup back, validated first with cbc-jwt keyset validate --keyset-file BACKUP`
  }
}

/** The document stored now when it is a valid keyset (for the audit line's `from`), else null. */
function validDocument(text: string | undefined, now: number): KeysetDocument | null {
  if (text === undefined) return null
  try {
    return loadKeyset(parseKeysetText(text), now).document
  } catch {
    return null
  }
}
