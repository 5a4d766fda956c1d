// An API built on the built package's adapters, as an adopter writes it: `node verifier-app.mjs`
// with ADAPTER=fastify or ADAPTER=express, PORT, and the keyset from the environment (createCbcJwt's
// defaults: CBC_JWT_KEYSET_FILE and the rest). Routes that expose what the adapter decides, so a
// test can compare it with the service's: /v1/whoami (authenticated), /v1/orders (scope
// orders:read), /metrics (the adapter's registry), /jwks and /keys (cbc.jwks(), cbc.keys()),
// /ready. Logs are the library's JSON lines on stdout.
import { Registry } from 'prom-client'

const adapter = process.env.ADAPTER
const port = Number(process.env.PORT)
const host = process.env.HOST ?? '127.0.0.1'
const registry = new Registry()
const whoami = (auth) => {
  const { sub, client_id, scope, iat, exp } = auth.claims
  return { sub: sub ?? null, client_id: client_id ?? null, scope: scope ?? null, kid: auth.kid, iat, exp }
}

if (adapter === 'fastify') {
  const { default: Fastify } = await import('fastify')
  const { default: cbcJwt } = await import('../../dist/adapters/fastify/index.js')
  const app = Fastify()
  await app.register(cbcJwt, { registry })
  app.get('/v1/whoami', { onRequest: app.authenticate }, async (request) => whoami(request.auth))
  app.get('/v1/orders', { onRequest: [app.authenticate, app.requireScope('orders:read')] }, async (request) => whoami(request.auth))
  app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()))
  app.get('/jwks', async () => app.cbcJwt.jwks())
  app.get('/keys', async () => app.cbcJwt.keys())
  app.get('/ready', async (_request, reply) => reply.code(app.cbcJwt.ready() ? 200 : 503).send({ ready: app.cbcJwt.ready() }))
  await app.listen({ port, host })
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)))
} else if (adapter === 'express') {
  const { default: express } = await import('express')
  const { cbcJwt, requireScope } = await import('../../dist/adapters/express/index.js')
  const app = express()
  const mw = cbcJwt({ registry })
  app.get('/metrics', async (_req, res) => void res.type(registry.contentType).send(await registry.metrics()))
  app.get('/jwks', (_req, res) => void res.json(mw.cbc.jwks()))
  app.get('/keys', (_req, res) => void res.json(mw.cbc.keys()))
  app.get('/ready', (_req, res) => void res.status(mw.cbc.ready() ? 200 : 503).json({ ready: mw.cbc.ready() }))
  app.use('/v1', mw)
  app.get('/v1/whoami', (req, res) => void res.json(whoami(req.auth)))
  app.get('/v1/orders', requireScope('orders:read'), (req, res) => void res.json(whoami(req.auth)))
  const server = app.listen(port, host)
  process.once('SIGTERM', () => server.close(() => void mw.cbc.close().then(() => process.exit(0))))
} else {
  console.error('ADAPTER must be fastify or express')
  process.exit(2)
}
