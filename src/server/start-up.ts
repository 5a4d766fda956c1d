import { createBackendFromConfig } from '../lib/backends/from-config.js'
import { serviceConfigFromEnv } from '../lib/config.js'
import { CbcJwtError } from '../lib/errors.js'
import { listenErrorMessage } from './listen-error.js'
import { createLogger } from './logger.js'
import { createService } from './service.js'

/**
 * Runs the service as `npm start`, `cbc-jwt serve` and `node dist/server/main.js` do:
 * configured by the environment, `dev` (the `--dev` flag) asking for the development keyset
 * like `CBC_JWT_DEV_KEYSET=true`. Every start-up failure is one line on stderr and exit 1 —
 * a configuration error names the variable to set — never a stack trace.
 */
export async function runService(opts: { dev: boolean }): Promise<void> {
  try {
    await start(opts)
  } catch (err) {
    process.stderr.write(`cbc-jwt: ${startUpErrorLine(err)}\n`)
    process.exit(1)
  }
}

async function start(opts: { dev: boolean }): Promise<void> {
  const fromEnv = serviceConfigFromEnv(process.env)
  const config = opts.dev ? { ...fromEnv, devKeyset: true } : fromEnv
  const logger = createLogger(config.logLevel)
  const backend = await createBackendFromConfig(config, process.env, logger)
  const service = createService({ config, backend, logger })
  const address = await service.start().catch(async (err: unknown) => {
    const message = listenErrorMessage(err, config.host, config.port)
    if (message === undefined) throw err
    await service.close().catch(() => {})
    throw new StartUpError(message)
  })
  logger.info({ event: 'listening', address, backend: backend.kind, location: backend.location }, 'cbc-jwt listening')
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    logger.info({ event: 'stopping', signal }, 'stopping')
    service.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error while stopping')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

/** An error whose message is already the operator's line. */
class StartUpError extends Error {}

/** One line: coded errors with their code, anything else by its first line (no stack). */
export function startUpErrorLine(err: unknown): string {
  const first = (s: string) => s.split('\n', 1)[0]!.trim()
  if (err instanceof StartUpError) return err.message
  if (err instanceof CbcJwtError) return `${err.code}: ${first(err.message)}`
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  const message = err instanceof Error ? first(err.message) : first(String(err))
  return `cannot start: ${code && !message.includes(code) ? `${code}: ` : ''}${message}`
}
