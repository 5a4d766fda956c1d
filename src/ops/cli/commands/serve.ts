import { UsageError } from '../../../lib/errors.js'
import { unexpectedArgument } from '../args.js'
import type { CliContext } from '../context.js'
import type { Command } from './command.js'

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the service (what npm start runs), configured by the environment',
  help: `Usage: cbc-jwt serve [--dev]   (configured by environment variables)

Runs the cbc-jwt service from the installed package: /metrics, /healthz, /readyz,
/.well-known/jwks.json, /v1/keys, /v1/whoami and the forward-auth endpoint /v1/auth.
Configured by the environment (PORT, HOST, CBC_JWT_KEYSET_FILE, CBC_JWT_BACKEND, ...; see
the README). With no keyset configured it refuses to start (exit 1, one line naming the
variable to set).

Options:
  --dev              use the development keyset ./.cbc-jwt/dev-keyset.json under the current
                     folder, generated on first use and announced in the log (as
                     CBC_JWT_DEV_KEYSET=true); refused under NODE_ENV=production and beside
                     a configured keyset
  -h, --help         this help

Logs are JSON lines on stdout. SIGTERM or SIGINT stops it (exit 0).

Exit status: 0 stopped by SIGTERM/SIGINT, 1 bad configuration or cannot start, 2 bad usage.`,

  async run(_ctx: CliContext, args: string[]): Promise<number> {
    const unexpected = args.find((a) => a !== '--dev')
    if (unexpected !== undefined)
      throw new UsageError(`serve: ${unexpectedArgument(unexpected)} (the only flag is --dev; configure the service with environment variables)`)
    // The server and its framework are loaded only by this command.
    const { runService } = await import('../../../server/start-up.js')
    await runService({ dev: args.includes('--dev') })
    return 0
  },
}
