import { BackendError, CasConflictError, KeysetInvalidError, RefusedError, UsageError } from '../../../lib/errors.js'
import type { KeysetBackend, LastGoodSnapshot } from '../../../lib/backends/backend.js'
import type { KeysetDocument } from '../../../lib/keyset/document.js'
import { generateKeyset } from '../../../lib/keyset/generate.js'
import { loadKeyset, parseKeysetText } from '../../../lib/keyset/load.js'
import { serializeKeyset } from '../../../lib/keyset/serialize.js'
import { KEYSET_OPTIONS, algFlag, parseCommandArgs, unexpectedArgument } from '../args.js'
import { println, type CliContext } from '../context.js'
import { AUDIT_HELP, AUDIT_OPTIONS, openAuditTrail } from '../audit.js'
import { closeSource, guardPrivateOutput, openKeysetSource } from '../keyset-source.js'
import { interimProjection, validDocument } from '../../projection/interim.js'
import { projectionOf, readProjections, refuseStaleProjection, writeProjections } from '../../projection/publish.js'
import { projectedFrom } from '../../projection/targets.js'
import { interimAhead, levelAfterWrite, oneChangeAtATime, projectionAhead, replaceInterimProjection, settleProjection } from '../../rotation/update-keyset.js'
import type { Command } from './command.js'

const OPTIONS = { ...KEYSET_OPTIONS, alg: { type: 'string' }, force: { type: 'boolean' }, ...AUDIT_OPTIONS } as const

export const keysetInitCommand: Command = {
  name: 'keyset init',
  summary: 'create a keyset with one current key',
  help: `Usage: cbc-jwt keyset init [--alg ALG] [--keyset-file PATH | --backend file|vault|kubernetes] [--force]

Creates a keyset document with one freshly generated current key, and writes its
verification projection (the same keyset without private keys, for verifiers) first: the
sibling .public.json file (CBC_JWT_PUBLIC_KEYSET_FILE), the Vault path ...-public
(CBC_JWT_VAULT_PUBLIC_PATH), or the Secret cbc-jwt-verification
(CBC_JWT_KUBERNETES_PUBLIC_SECRET) in each namespace of CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES.
Without a destination the configured backend is used when CBC_JWT_BACKEND is vault or
kubernetes; otherwise (or with -) the document goes to stdout — never to a terminal unless
--print-private-key is given.

Options:
  --alg ALG          HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384
                     ES512 EdDSA (default ES256)
  --keyset-file PATH write it there (atomically; a new file is created 0600)
  --backend B        write it to the configured backend (file: CBC_JWT_KEYSET_FILE;
                     vault: VAULT_ADDR, CBC_JWT_VAULT_MOUNT, CBC_JWT_VAULT_PATH, ...)
  --print-private-key  allow the keyset (private keys) to be printed to a terminal
  --force            replace an existing keyset, or start over where a deleted keyset's
                     last good copy remains (keyset restore puts that back); its keys are
                     lost: tokens they signed stop verifying once the service loads the new one;
                     never over the verification projection of a private keyset (its verifiers
                     would get the signing key)
${AUDIT_HELP}
                     (for a keyset written to a backend; stdout output is not a change)
  -h, --help         this help

Exit status: 0 created, 1 refused (destination already holds a keyset, or its last good copy
does) / backend error, 2 bad usage.`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values, positionals } = parseCommandArgs('keyset init', args, OPTIONS, { max: 1, what: '- (stdout)' })
    if (positionals[0] !== undefined && positionals[0] !== '-') throw new UsageError(`keyset init: ${unexpectedArgument(positionals[0])}`)
    const alg = algFlag(values.alg) ?? 'ES256'
    const file = values['keyset-file']
    const dash = positionals[0] === '-' || file === '-'
    if (dash && ((file !== undefined && file !== '-') || values.backend !== undefined)) {
      throw new UsageError('keyset init: give one destination: -, --keyset-file PATH or --backend')
    }
    const doc = await generateKeyset(alg, new Date(ctx.now()))
    const text = serializeKeyset(doc)
    loadKeyset(parseKeysetText(text), ctx.now()) // never write what would not load
    // A configured Vault or Kubernetes backend is the destination when none is given: the
    // runbook's `CBC_JWT_BACKEND=kubernetes cbc-jwt keyset init` creates the Secret instead of
    // printing a private key.
    const configured = ctx.env.CBC_JWT_BACKEND === 'vault' || ctx.env.CBC_JWT_BACKEND === 'kubernetes'
    if (dash || (file === undefined && values.backend === undefined && !configured)) {
      if (values.force === true) throw new UsageError('keyset init: --force replaces a stored keyset; stdout holds none (give --keyset-file PATH or --backend)')
      guardPrivateOutput(ctx, values, text)
      ctx.stdout.write(text)
      return 0
    }
    const audit = openAuditTrail(ctx, 'keyset init', values)
    const source = openKeysetSource(ctx, values)
    try {
      // One change of the keyset at a time, as rotate and revoke (a file's update lock).
      return await oneChangeAtATime(source.backend, async () => {
        const existing = await readExisting(source.backend)
        if (existing !== undefined && existing.text.trim() !== '' && values.force !== true) {
          throw new RefusedError(`${source.backend.location} ${describeExisting(existing.text, ctx.now())}; use --force to replace it (its keys would be lost)`)
        }
        // The verification projection of another keyset is what its verifiers read (0644, or a
        // Secret or path they may read): a keyset with private keys written there would hand
        // every verifier the signing key, --force or not.
        const owner = source.file !== undefined ? projectedFrom(source.file, ctx.env) : await source.projectionOwner?.()
        if (owner !== undefined) {
          throw new RefusedError(
            `${source.backend.location} is the verification projection of ${owner}: a keyset with private keys written there would give every verifier the signing key; init that keyset instead (its every write updates this projection)`,
          )
        }
        if (values.force !== true) await refuseOverLastGood(source.backend, ctx.now())
        // The projection first (its own check-and-set): verifiers know the key before it signs.
        // Over a keyset in force, its keys stay there until this one is stored (interim.ts).
        const projected = projectionOf(doc)
        const states = await readProjections(source.projections())
        refuseStaleProjection(states, doc, undefined, 'replace the keyset with HS* (oct) keys')
        const inForce = validDocument(existing?.text, ctx.now())
        const interim = inForce && 'text' in projected ? interimProjection(inForce, doc) : undefined
        const published = 'text' in projected ? await writeProjections(states, (interim ?? projected).text) : []
        let notice: string | undefined
        try {
          // Create-only when nothing is there, check-and-set otherwise: two concurrent inits
          // cannot both win, and one never silently replaces the other's keyset.
          notice = (await source.backend.write(text, existing ? existing.version : null)).notice
        } catch (err) {
          if (err instanceof CasConflictError) {
            // Another writer's keyset is in force: a projection of this one would hide its keys.
            const settled = published.length > 0 ? await settleProjection(source.backend, source.projections(), ctx.now) : ''
            throw new RefusedError(
              `${source.backend.location} was changed by another writer while this init ran; ${published.length > 0 ? 'it was not written' : 'nothing was written'} (${err.message})${settled}`,
            )
          }
          if (err instanceof Error) err.message += interim ? interimAhead(published) : projectionAhead(published)
          throw err
        }
        // Another writer's projection may have replaced this one before the keyset write landed:
        // levelled here. An interim one is replaced outright by the stored keyset's own, which
        // covers that case too.
        const left = interim ? await replaceInterimProjection(source.backend, source.projections(), ctx.now) : undefined
        const levelled = interim ? undefined : await levelAfterWrite(source.backend, source.projections(), ctx.now)
        for (const location of published) println(ctx.stdout, `wrote the verification projection ${location}`)
        if ('skipped' in projected) println(ctx.stdout, `note: ${projected.skipped}`)
        if (levelled !== undefined) println(ctx.stdout, `note: ${levelled}`)
        // A write that landed in an unexpected way (kubernetes-backend.ts) is reported, as rotate does.
        if (notice !== undefined) println(ctx.stdout, `note: ${notice}`)
        println(ctx.stdout, `created ${source.backend.location}: ${alg} key ${doc.current} (current)`)
        audit.record({ location: source.backend.location, before: existing ? previousDocument(existing.text) : null, after: doc })
        if (left === undefined) return 0
        println(ctx.stderr, `cbc-jwt: ${left}`)
        return 1
      })
    } finally {
      audit.close()
      await closeSource(source)
    }
  },
}

/** The keyset a --force init replaced, if it still parses as one (for the audit line). */
function previousDocument(text: string): KeysetDocument | null {
  try {
    const data = parseKeysetText(text) as Partial<KeysetDocument>
    const keys = data.keys
    return typeof data.current === 'string' && Array.isArray(keys) && keys.every((k) => typeof k?.kid === 'string') ? (data as KeysetDocument) : null
  } catch {
    return null
  }
}

async function readExisting(backend: KeysetBackend) {
  try {
    return await backend.read()
  } catch (err) {
    if (err instanceof BackendError && err.reason === 'not_found') return undefined
    throw err
  }
}

/**
 * A keyset gone while its last good copy holds one is an accident to undo (`keyset restore`),
 * not a first start: a new keyset would replace the copy and the projection, and every token
 * signed with the old keys would stop verifying.
 */
async function refuseOverLastGood(backend: KeysetBackend, now: number): Promise<void> {
  if (!backend.readLastGood) return
  let copy: LastGoodSnapshot
  try {
    copy = await backend.readLastGood()
  } catch (err) {
    if (err instanceof BackendError && err.reason === 'not_found') return
    throw err
  }
  let current: string
  try {
    current = loadKeyset(parseKeysetText(copy.text), now).current.kid
  } catch (err) {
    if (err instanceof KeysetInvalidError) return
    throw err
  }
  throw new RefusedError(
    `${backend.location} holds no keyset, but its last good copy ${copy.location} does (current ${current}): run cbc-jwt keyset restore to put it back, or keyset init --force to start over (its keys would be lost)`,
  )
}

function describeExisting(text: string, now: number): string {
  try {
    return `already holds a valid keyset (current ${loadKeyset(parseKeysetText(text), now).current.kid})`
  } catch (err) {
    if (err instanceof KeysetInvalidError) return 'already exists and is not empty (and not a valid keyset)'
    throw err
  }
}
