import type { FastifyInstance } from 'fastify'
import type { Keyring } from '../../lib/keyring/keyring.js'
import type { Metrics } from '../../lib/metrics/metrics.js'

/** /healthz, /readyz and /metrics: what Kubernetes and Prometheus ask. */
export function operationsRoutes(
  app: FastifyInstance,
  deps: { keyring: Pick<Keyring, 'ready' | 'keyset' | 'verifyingKeys'>; metrics: Pick<Metrics, 'registry'> },
) {
  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_request, reply) => {
    const keyset = deps.keyring.keyset()
    if (!keyset) return reply.code(503).send({ status: 'not_ready', reason: 'no valid keyset loaded yet' })
    // Every key past its not_after: the keyset in force would no longer validate, and every token
    // of it is refused (cbc_jwt_keys_loaded 0, JWTNoKeysLoaded). Such a replica is not ready either.
    if (deps.keyring.verifyingKeys().length === 0) {
      return reply.code(503).send({ status: 'not_ready', reason: 'no key of the keyset verifies: every key is past its not_after' })
    }
    return { status: 'ready', current: keyset.current.kid }
  })

  app.get('/metrics', async (_request, reply) => {
    const body = await deps.metrics.registry.metrics()
    return reply.header('content-type', deps.metrics.registry.contentType).send(body)
  })
}
