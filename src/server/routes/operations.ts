import type { FastifyInstance } from 'fastify'
import type { Keyring } from '../../lib/keyring/keyring.js'
import type { Metrics } from '../../lib/metrics/metrics.js'

/** /healthz, /readyz and /metrics: what Kubernetes and Prometheus ask. */
export function operationsRoutes(app: FastifyInstance, deps: { keyring: Pick<Keyring, 'ready' | 'keyset'>; metrics: Pick<Metrics, 'registry'> }) {
  app.get('/healthz', async () => ({ status: 'ok' }))

  app.get('/readyz', async (_request, reply) => {
    const keyset = deps.keyring.keyset()
    if (!keyset) return reply.code(503).send({ status: 'not_ready', reason: 'no valid keyset loaded yet' })
    return { status: 'ready', current: keyset.current.kid }
  })

  app.get('/metrics', async (_request, reply) => {
    const body = await deps.metrics.registry.metrics()
    return reply.header('content-type', deps.metrics.registry.contentType).send(body)
  })
}
