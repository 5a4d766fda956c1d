import { NoSigningKeyError, RefusedError, UsageError } from '../../../lib/errors.js'
import { checkedTtlSeconds, DEFAULT_TTL_SECONDS, signWith, TtlTooLongError } from '../../../lib/core/sign.js'
import { formatDuration } from '../../../lib/duration.js'
import { grantedScopes } from '../../../lib/core/scope.js'
import { KEYSET_OPTIONS, durationFlag, parseCommandArgs, quotedArgument, unexpectedArgument } from '../args.js'
import { println, type CliContext } from '../context.js'
import { openKeysetSource, readKeyset } from '../keyset-source.js'
import { maxTokenTtlMs, verifierSettings } from '../settings.js'
import type { Command } from './command.js'
import { checkValue } from './revoke.js'

const OPTIONS = {
  ...KEYSET_OPTIONS,
  sub: { type: 'string' },
  'client-id': { type: 'string' },
  scope: { type: 'string' },
  ttl: { type: 'string' },
  iss: { type: 'string' },
  aud: { type: 'string' },
  'max-token-ttl': { type: 'string' },
} as const

const TTL_FLAGS = { ttl: '--ttl', maxTokenTtl: '--max-token-ttl / CBC_JWT_MAX_TOKEN_TTL' }

export const tokenIssueCommand: Command = {
  name: 'token issue',
  summary: 'sign a token with the current key',
  help: `Usage: cbc-jwt token issue --sub SUBJECT [options] [- | --keyset-file PATH | --backend file|vault|kubernetes]

Signs a JWT with the keyset's current key and prints it. Header: alg and kid of the key,
typ JWT. Claims: iss, aud, sub, client_id, scope, iat, exp, jti.

Options:
  --sub S            subject (required)
  --client-id C      client_id claim (default: the subject)
                     (each 1-256 characters without control characters, as revoke names them)
  --scope S          scope claim, space-separated (omitted when not given)
  --ttl DUR          lifetime (default ${formatDuration(DEFAULT_TTL_SECONDS * 1000)}); at most the max token TTL
  --iss I            issuer (default CBC_JWT_ISSUER, else cbc-omega2)
  --aud A            audience (default CBC_JWT_AUDIENCE, else cbc-api)
  --max-token-ttl DUR  longest lifetime allowed (env CBC_JWT_MAX_TOKEN_TTL, default 24h):
                     the rotation grace is sized for it
  -h, --help         this help

Exit status: 0 printed, 1 invalid keyset / backend error, 2 bad usage.`,

  async run(ctx: CliContext, args: string[]): Promise<number> {
    const { values, positionals } = parseCommandArgs('token issue', args, OPTIONS, { max: 1, what: '- (keyset on stdin)' })
    if (positionals[0] !== undefined && positionals[0] !== '-') throw new UsageError(`token issue: ${unexpectedArgument(positionals[0])}`)
    if (values.sub === undefined || values.sub === '') throw new UsageError('token issue: --sub SUBJECT is required')
    // A token names only what revoke --subject / --client-id can: else it could never be cut off by id.
    checkValue('--sub', values.sub)
    if (values['client-id'] !== undefined) checkValue('--client-id', values['client-id'])
    // The rule sign() enforces, checked here: the value comes from a flag (exit 2, before any read).
    if (values.scope !== undefined && grantedScopes({ scope: values.scope }) === undefined) {
      throw new UsageError(
        `--scope must be RFC 6749 scope-tokens separated by single spaces (printable ASCII, no quotes or backslashes), got ${quotedArgument(values.scope)}`,
      )
    }
    const ttlMs = durationFlag('ttl', values.ttl)
    if (ttlMs !== undefined && ttlMs < 1000) throw new UsageError('--ttl must be at least 1s')
    const ttl = ttlMs === undefined ? undefined : ttlMs / 1000
    const maxTokenTtlSeconds = maxTokenTtlMs(ctx.env, values['max-token-ttl']) / 1000
    try {
      // The flag as written, so that a refusal names it so (--ttl 25h, not only 1d1h).
      checkedTtlSeconds(values.ttl, maxTokenTtlSeconds, TTL_FLAGS)
    } catch (err) {
      // The lifetime comes from a flag: over the max it is the caller's usage to fix (exit 2).
      if (err instanceof TtlTooLongError) throw new UsageError(err.message)
      throw err
    }
    const { issuer, audience } = verifierSettings(ctx.env, values)
    const source = openKeysetSource(ctx, values, positionals)
    const { keyset } = await readKeyset(source, ctx.now())
    const key = keyset.current
    const claims: Record<string, unknown> = { sub: values.sub, client_id: values['client-id'] ?? values.sub }
    if (values.scope !== undefined) claims.scope = values.scope
    let token: string
    try {
      token = await signWith(keyset, claims, { ttl }, { issuer, audience, maxTokenTtlSeconds, nowMs: ctx.now(), names: TTL_FLAGS })
    } catch (err) {
      // The code on the line too: scripts and runbooks grep for it.
      if (err instanceof NoSigningKeyError) {
        err.message = `${err.code}: ${source.backend.location}: ${err.message}`
        throw err
      }
      throw new RefusedError(`cannot sign with ${key.kid} (${key.alg}): ${(err as Error).message}`)
    }
    println(ctx.stdout, token)
    return 0
  },
}
