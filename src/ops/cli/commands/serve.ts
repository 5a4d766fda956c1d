import { UsageError } from '../../../lib/errors.js'
import type { CliContext } from '../context.js'
import type { Command } from './command.js'

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the service (what npm start runs), configured by the environment',
  help: `Usage: cbc-jwt serve   (configured by environment variables only)

Runs the cbc-jwt service from the installed package: /metrics, /healthz, /readyz,
/.well-known/jwks.json, /v1/keys, /v1/whoami and the forward-auth endpoint /v1/auth.
Configured by the environment only (PORT, HOST, CBC_JWT_KEYSET_FILE, CBC_JWT_BACKEND, ...;
see the README). With no backend configured it generates a development keyset at
./.cbc-jwt/dev-keyset.json (the current directory) and says so in the log.

Logs are JSON lines on stdout. SIGTERM or SIGINT stops it (exit 0).

Exit status: 0 stopped by SIGTERM/SIGINT, 1 bad configuration or cannot start, 2 bad usage.`,

  async run(_ctx: CliContext, args: string[]): Promise<number> {
    if (args.length > 0) throw new UsageError(`serve: unexpected argument "${args[0]}" (configure the service with environment variables)`)
    // The server and its framework are loaded only by this command.
    await import('../../../server/main.js')
    return 0
  },
}
