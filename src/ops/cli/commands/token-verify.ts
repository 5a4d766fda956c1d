import { bearerCredential } from '../../../lib/core/bearer.js'
import { UsageError } from '../../../lib/errors.js'
import { asciiJson, printable } from '../../../lib/logging/sanitize.js'
import { createVerifier } from '../../../lib/verifier/verifier.js'
import { KEYSET_OPTIONS, parseCommandArgs } from '../args.js'
import { println, readTokenFromStdin, type CliContext } from '../context.js'
import { openKeysetSource, readKeyset } from '../keyset-source.js'
import { serviceSettings, verifierSettings } from '../settings.js'
import type { Command } from './command.js'

const OPTIONS = { ...KEYSET_OPTIONS, iss: { type: 'string' }, aud: { type: 'string' }, json: { type: 'boolean' } } as const

export const tokenVerifyCommand: Command = {
  name: 'token verify',
  summary: "verify a token offline with the service's own verifier",
  help: `Usage: cbc-jwt token verify TOKEN|- [--keyset-file PATH | --backend file|vault|kubernetes] [options]

Verifies TOKEN (or the token on stdin, with -) against the keyset with exactly the checks
the service makes, at the current time; an Authorization value ("Bearer TOKEN") is taken
too. Prints the claims as JSON; a rejected token prints its reason (missing, malformed,
too_large, unsupported_alg, unknown_kid, bad_signature, expired, not_yet_valid, bad_issuer,
bad_audience, revoked). Offline: the keyset's own tokens only; a trusted issuer's
(CBC_JWT_TRUSTED_ISSUERS) is bad_issuer here, and the message says so.

Options:
  --iss I            expected issuer (default CBC_JWT_ISSUER, else cbc-omega2)
  --aud A            expected audience (default CBC_JWT_AUDIENCE, else cbc-api)
  --json             print {"valid": true, "kid", "claims"} or {"valid": false, "reason", "kid"}
  -h, --help         this help
Also read: CBC_JWT_CLOCK_TOLERANCE_SECONDS (30), CBC_JWT_MAX_TOKEN_BYTES (8192).

Exit status: 0 valid, 1 rejected / invalid keyset / backend error, 2 bad usage.`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values, positionals } = parseCommandArgs('token verify', args, OPTIONS, { max: 1, what: 'one TOKEN' })
    const arg = positionals[0]
    if (arg === undefined) throw new UsageError('token verify: give the TOKEN to verify (or - to read it from stdin)')
    if (arg === '-' && values['keyset-file'] === '-') throw new UsageError('token verify: the token and the keyset cannot both come from stdin')
    const verifier = createVerifier({ ...verifierSettings(ctx.env, values), now: ctx.now })
    const source = openKeysetSource(ctx, values)
    const { keyset } = await readKeyset(source, ctx.now())
    const given = arg === '-' ? await readTokenFromStdin(ctx.stdin, 'token verify') : arg
    // An Authorization header value ("Bearer TOKEN", what a client reports) is judged as the
    // service judges that header: its token verified, two credentials malformed. A compact JWS
    // has no blank, so a bare token never reads as one.
    const credential = /^bearer[ \t]/i.test(given.trim()) ? bearerCredential(given) : { token: given }
    if (!('token' in credential)) {
      if (values.json) println(ctx.stdout, asciiJson({ valid: false, reason: credential.reason, kid: null }, 2))
      println(ctx.stderr, `cbc-jwt: token rejected: ${credential.reason} (an Authorization value holds "Bearer" and one token)`)
      return 1
    }
    const result = await verifier.verify(credential.token, keyset)
    if (result.ok) {
      // The claims are the token's text: escaped to ASCII, so a C1 control or a bidi override in
      // a claim never reaches the terminal raw (a JSON reader gets the same values).
      println(ctx.stdout, asciiJson(values.json ? { valid: true, kid: result.kid, claims: result.claims } : result.claims, 2))
      return 0
    }
    const audience = result.audience
    if (values.json) {
      const detail = audience ? { expected_audience: audience.expected, received_audience: audience.received ?? null } : {}
      println(ctx.stdout, asciiJson({ valid: false, reason: result.reason, kid: result.kid ?? null, ...detail }, 2))
    }
    // A wrong audience says which API the token was meant for (escaped and bounded).
    const why = audience
      ? `; expected ${audience.expected.map((a) => printable(a, { max: 128 })).join(' or ')}, received ${audienceText(audience.received)}`
      : ''
    println(
      ctx.stderr,
      `cbc-jwt: token rejected: ${result.reason}${result.kid ? ` (kid ${result.kid})` : ''}${why}${trustedIssuerNote(ctx.env, result.reason, credential.token)}`,
    )
    return 1
  },
}

/**
 * A token of a trusted issuer (CBC_JWT_TRUSTED_ISSUERS) is `bad_issuer` here, where the service
 * accepts it: its keys are on the issuer's server, and this check is offline, the keyset only.
 * Said, naming the configured issuer (never the token's text), so that an operator comparing
 * with the service is not misled.
 */
function trustedIssuerNote(env: NodeJS.ProcessEnv, reason: string, token: string): string {
  if (reason !== 'bad_issuer') return ''
  let iss: unknown
  let issuers: readonly { issuer: string }[]
  try {
    iss = (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: unknown }).iss
    issuers = serviceSettings(env).trustedIssuers
  } catch {
    return ''
  }
  const trusted = issuers.find((t) => t.issuer === iss)
  return trusted === undefined
    ? ''
    : `; its iss is the trusted issuer ${printable(trusted.issuer, { max: 256 })}, which the service verifies with that issuer's JWK Set: token verify checks the keyset's own tokens only (offline)`
}

/** A received audience for the one-line message: no aud, one, or the (bounded) list. */
function audienceText(received: string | string[] | undefined): string {
  if (received === undefined) return 'no aud'
  return Array.isArray(received) ? `[${received.join(', ')}]` : received
}
