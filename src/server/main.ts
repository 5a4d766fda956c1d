#!/usr/bin/env node
/** `npm start`: the service, configured by the environment (README.md, "Configure"). */
import { createBackendFromConfig } from '../lib/backends/from-config.js'
import { serviceConfigFromEnv } from '../lib/config.js'
import { CbcJwtError } from '../lib/errors.js'
import { listenErrorMessage } from './listen-error.js'
import { createLogger } from './logger.js'
import { createService } from './service.js'

async function main() {
  const config = serviceConfigFromEnv(process.env)
  const logger = createLogger(config.logLevel)
  const backend = await createBackendFromConfig(config, process.env, logger)
  const service = createService({ config, backend, logger })
  const address = await service.start().catch((err: unknown) => {
    const message = listenErrorMessage(err, config.host, config.port)
    if (message === undefined) throw err
    process.stderr.write(`cbc-jwt: ${message}\n`)
    process.exit(1)
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

main().catch((err: unknown) => {
  // Configuration errors are the operator's to fix: one clear line, no stack.
  const message = err instanceof CbcJwtError ? `${err.code}: ${err.message}` : err instanceof Error ? (err.stack ?? err.message) : String(err)
  process.stderr.write(`cbc-jwt: ${message}\n`)
  process.exit(1)
})
