import type { FastifyInstance } from 'fastify'
import type { Keyring } from '../../keyring/keyring.js'

/**
 * The public face of the keyset: the RFC 7517 JWK Set (public halves of asymmetric keys
 * that verify now) and key metadata. Neither ever carries private or symmetric material.
 */
export function keyRoutes(app: FastifyInstance, deps: { keyring: Pick<Keyring, 'keyset' | 'verifyingKeys'>; now: () => number }) {
  app.get('/.well-known/jwks.json', async (_request, reply) => {
    const keys = deps.keyring
      .verifyingKeys(deps.now())
      .filter((k) => k.publicJwk !== undefined)
      .map((k) => ({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: 'sig' }))
    return reply.header('cache-control', 'public, max-age=60').send({ keys })
  })

  app.get('/v1/keys', async (_request, reply) => {
    const keyset = deps.keyring.keyset()
    if (!keyset) return reply.code(503).send({ error: 'not_ready', reason: 'no valid keyset loaded yet' })
    const now = deps.now()
    return {
      current: keyset.current.kid,
      revoked_before: keyset.document.revoked_before ?? null,
      keys: keyset.document.keys.map((entry) => {
        const key = keyset.keys.get(entry.kid)!
        return {
          kid: entry.kid,
          alg: entry.alg,
          status: key.status,
          created_at: entry.created_at,
          age_seconds: Math.max(0, Math.floor((now - key.createdAt) / 1000)),
          not_after: entry.not_after ?? null,
          verifies: key.notAfter === undefined || now < key.notAfter,
        }
      }),
    }
  })
}
