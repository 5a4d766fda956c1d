import { KeysetInvalidError, UsageError, formatProblem } from '../../../lib/errors.js'
import { loadKeyset, parseKeysetText } from '../../../lib/keyset/load.js'
import { KEYSET_OPTIONS, parseCommandArgs, unexpectedArgument } from '../args.js'
import { println, type CliContext } from '../context.js'
import { closeSource, openKeysetSource } from '../keyset-source.js'
import { projectionDrift } from '../../projection/publish.js'
import type { Command } from './command.js'
import { asciiJson } from '../../../lib/logging/sanitize.js'

const OPTIONS = { ...KEYSET_OPTIONS, json: { type: 'boolean' }, projection: { type: 'boolean' } } as const

export const keysetValidateCommand: Command = {
  name: 'keyset validate',
  summary: 'check a keyset: schema and meaning, every problem listed with its JSON path',
  help: `Usage: cbc-jwt keyset validate [- | --keyset-file PATH | --backend file|vault|kubernetes] [--json]

Checks the JSON Schema (schema/keyset.schema.json) and the meaning: current exists and can
sign and is not past not_after, kids unique, key material fits alg, RSA >= 2048 bits, HMAC
secrets >= the hash size. Every problem is listed on stdout as "JSON.path: message".

A verification keyset (no key holds a private part: what verifiers are given) is valid
too and is reported as one; a keyset mixing private and public-only keys is refused. A
keyset with HS* keys is valid but has no verification form: whoever holds an HS secret can
sign with it, so least privilege needs asymmetric algorithms (a note says so).

Options:
  --projection       also compare the published verification projection(s) with the
                     keyset: each must be exactly the keyset without private keys; exit 1
                     on drift (repair: run the command that changed it again, or any
                     change command, e.g. rotate --auto)
  --json             print {"valid": bool, "problems": [{"path", "message"}], ...}; with
                     --projection also "projection": {"in_sync": bool, "drift": [...]}
  -h, --help         this help

Exit status: 0 valid, 1 invalid or unreadable, 2 bad usage.`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values, positionals } = parseCommandArgs('keyset validate', args, OPTIONS, { max: 1, what: '- (stdin)' })
    if (positionals[0] !== undefined && positionals[0] !== '-')
      throw new UsageError(`keyset validate: ${unexpectedArgument(positionals[0])} (use --keyset-file PATH)`)
    const source = openKeysetSource(ctx, values, positionals)
    let text: string
    let drift: string[] | undefined
    try {
      text = (await source.backend.read()).text
      if (values.projection) {
        if (source.streamsDocument) throw new UsageError('keyset validate --projection reads the configured backend or --keyset-file, not -')
        drift = await projectionDrift(text, source.projections(), ctx.now())
      }
    } finally {
      await closeSource(source)
    }
    const where = source.backend.location
    try {
      const keyset = loadKeyset(parseKeysetText(text), ctx.now())
      const kind = keyset.signing ? 'signing' : 'verification'
      const notes = symmetricNote(keyset.document.keys)
      const projection = drift === undefined ? {} : { projection: { in_sync: drift.length === 0, drift } }
      const summary = { valid: true, kind, current: keyset.current.kid, keys: keyset.document.keys.length, problems: [], notes, ...projection }
      if (values.json) println(ctx.stdout, asciiJson(summary, 2))
      else {
        println(
          ctx.stdout,
          `${where}: valid ${kind === 'verification' ? 'verification keyset (no private key: verifies, cannot sign)' : 'keyset'}, ${summary.keys} key(s), current ${summary.current}`,
        )
        for (const note of notes) println(ctx.stdout, `note: ${note}`)
      }
      if (drift !== undefined) {
        for (const line of drift) println(ctx.stderr, `cbc-jwt: drift: the verification projection ${line}`)
        if (drift.length === 0 && !values.json) println(ctx.stdout, 'verification projection: in sync')
        return drift.length === 0 ? 0 : 1
      }
      return 0
    } catch (err) {
      if (!(err instanceof KeysetInvalidError)) throw err
      if (values.json) {
        println(ctx.stdout, asciiJson({ valid: false, reason: err.reason, problems: err.problems }, 2))
      } else {
        for (const p of err.problems) println(ctx.stdout, formatProblem({ path: p.path || '(document)', message: p.message }))
      }
      println(ctx.stderr, `cbc-jwt: ${where}: invalid keyset (${err.problems.length} problem${err.problems.length === 1 ? '' : 's'})`)
      return 1
    }
  },
}

/** HS* keys cannot be given to verifiers without letting them sign: said on every validation. */
function symmetricNote(keys: ReadonlyArray<{ kid: string; jwk: { kty?: string } }>): string[] {
  const symmetric = keys.filter((k) => k.jwk.kty === 'oct').map((k) => k.kid)
  if (symmetric.length === 0) return []
  return [
    `${symmetric.join(', ')}: HS* (oct) ${symmetric.length === 1 ? 'key' : 'keys'} cannot be made public: every verifier holding ${symmetric.length === 1 ? 'it' : 'them'} can also sign; use an asymmetric algorithm (ES256, EdDSA, RS256, PS256) so verifiers get a keyset without private material`,
  ]
}
