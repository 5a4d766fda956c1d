import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { KeysetBackend } from '../backends/backend.js'
import type { ServiceConfig } from '../config.js'
import { createKeyring, type Keyring } from '../keyring/keyring.js'
import { createMetrics, type Metrics } from '../metrics/metrics.js'
import { createVerifier } from '../verifier/verifier.js'
import { buildApp } from './app.js'

export interface Service {
  app: FastifyInstance
  keyring: Keyring
  metrics: Metrics
  /** Listens, then starts loading keys (so /healthz answers while the first load runs). */
  start(): Promise<string>
  /** Stops the server, the refresh timer and the watchers. */
  close(): Promise<void>
}

/** Wires backend → keyring → verifier → metrics → HTTP app: the service's composition root. */
export function createService(opts: {
  config: ServiceConfig
  backend: KeysetBackend
  logger: Logger
  now?: () => number
}): Service {
  const { config, backend, logger } = opts
  const now = opts.now ?? Date.now
  let metrics: Metrics | undefined
  const keyring = createKeyring({
    backend,
    logger,
    now,
    refreshIntervalMs: config.refreshIntervalSeconds * 1000,
    unknownKidCooldownMs: config.unknownKidCooldownSeconds * 1000,
    events: {
      onBackendError: (reason) => metrics?.backendError(reason),
      onRotation: () => metrics?.rotation(),
    },
  })
  metrics = createMetrics({ keyring, refreshIntervalSeconds: config.refreshIntervalSeconds, now })
  const verifier = createVerifier({
    issuer: config.issuer,
    audience: config.audience,
    clockToleranceSeconds: config.clockToleranceSeconds,
    maxTokenBytes: config.maxTokenBytes,
    maxTokenLifetimeSeconds: config.maxTokenTtlSeconds,
    now,
  })
  const app = buildApp({ keyring, verifier, metrics, logger, now })
  return {
    app,
    keyring,
    metrics,
    async start() {
      const address = await app.listen({ port: config.port, host: config.host })
      await keyring.start()
      return address
    },
    async close() {
      await app.close()
      await keyring.close()
    },
  }
}
