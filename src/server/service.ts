import { trustedIssuerOf } from '../lib/issuers/trusted-issuers.js'
import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { KeysetBackend } from '../lib/backends/backend.js'
import type { ServiceConfig } from '../lib/config.js'
import type { CbcJwt } from '../lib/core/cbc-jwt.js'
import { composeCbcJwt } from '../lib/core/compose.js'
import type { Keyring } from '../lib/keyring/keyring.js'
import type { Metrics } from '../lib/metrics/metrics.js'
import { buildApp } from './app.js'

export interface Service {
  app: FastifyInstance
  /** The library instance the routes are adapters of. */
  cbc: CbcJwt
  keyring: Keyring
  metrics: Metrics
  /** Listens, then starts loading keys (so /healthz answers while the first load runs). */
  start(): Promise<string>
  /** Stops the server, the refresh timer and the watchers. */
  close(): Promise<void>
}

/**
 * The service: the library's composition (backend → keyring → verifier → metrics → rejection
 * log) plus the Fastify app whose routes are adapters of it. There is one path for a token,
 * the one an embedding API gets from `createCbcJwt`.
 */
export function createService(opts: {
  config: ServiceConfig
  /** @default the backend the configuration names */
  backend?: KeysetBackend
  logger: Logger
  now?: () => number
}): Service {
  const { config, logger } = opts
  const { port, host, backend: kind, devKeyset: _devKeyset, httpRequestTimeoutSeconds, httpMaxConnections, trustedIssuers, ...settings } = config
  const parts = composeCbcJwt({
    ...settings,
    trustedIssuers: trustedIssuers.map(trustedIssuerOf),
    backend: opts.backend ?? kind,
    logger,
    // The configuration is complete: nothing more is read from the environment.
    env: {},
    ...(opts.now ? { now: opts.now } : {}),
  })
  const app = buildApp({
    cbc: parts.cbc,
    keyring: parts.keyring,
    metrics: parts.metrics,
    logger,
    http: { requestTimeoutSeconds: httpRequestTimeoutSeconds, maxConnections: httpMaxConnections },
  })
  return {
    app,
    cbc: parts.cbc,
    keyring: parts.keyring,
    metrics: parts.metrics,
    async start() {
      const address = await app.listen({ port, host })
      await parts.cbc.start()
      return address
    },
    async close() {
      await app.close()
      await parts.cbc.close()
    },
  }
}
