import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { CbcJwt } from '../lib/core/cbc-jwt.js'
import { cbcJwtPlugin } from '../adapters/fastify/plugin.js'
import type { Keyring } from '../lib/keyring/keyring.js'
import type { Metrics } from '../lib/metrics/metrics.js'
import { answerForwardAuthFirst, forwardAuthAnswer, forwardAuthRoutes } from './routes/forward-auth.js'
import { keyRoutes } from './routes/keys.js'
import { operationsRoutes } from './routes/operations.js'
import { whoamiRoute } from './routes/whoami.js'

/** Request headers up to this size are read, so an oversized token is a counted 401, not a 431. */
export const MAX_HEADER_BYTES = 64 * 1024

const DEFAULT_REQUEST_TIMEOUT_SECONDS = 10
const DEFAULT_MAX_CONNECTIONS = 1000

export interface AppDeps {
  cbc: CbcJwt
  keyring: Pick<Keyring, 'keyset' | 'ready' | 'verifyingKeys'>
  metrics: Pick<Metrics, 'registry'>
  logger: Logger
  /** Bounds of a directly exposed server. @default 10 s per request, 1000 connections */
  http?: { requestTimeoutSeconds?: number; maxConnections?: number }
}

/** Builds the HTTP app without listening (tests use `inject` or `listen` on port 0). */
export function buildApp(deps: AppDeps): FastifyInstance {
  const requestTimeoutMs = Math.round((deps.http?.requestTimeoutSeconds ?? DEFAULT_REQUEST_TIMEOUT_SECONDS) * 1000)
  // pino's Logger and fastify's base logger type differ only in generics; one cast, here.
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // One log line per rejection is written by the library; per-request access logs are
    // left to the ingress, where they cost this process nothing.
    logController: new LogController({ disableRequestLogging: true }),
    // Fastify would make a pino child per request (≈ 0.3 µs and its garbage, on every
    // request, for lines almost no request writes). The root logger serves instead, and the
    // few lines written per request carry the request id themselves (the error handler below).
    childLoggerFactory: (logger) => logger,
    // Options of Node's server, not a server of our own (serverFactory): fastify then still
    // applies its keep-alive (72 s, above the 60 s idle timeout of common load balancers, so a
    // balancer never reuses a connection this side has just closed) and request timeouts.
    // A request (headers and body) must arrive within the timeout of its first byte, else 408 and
    // the socket closes; Node checks every second rather than its default 30 s, so a client that
    // drips a byte at a time holds a socket for the timeout, not for as long as it likes.
    http: { maxHeaderSize: MAX_HEADER_BYTES, connectionsCheckingInterval: 1000 },
    requestTimeout: requestTimeoutMs,
    bodyLimit: 16 * 1024,
  }) as unknown as FastifyInstance
  app.server.headersTimeout = requestTimeoutMs
  // Connections past the cap are closed as they arrive: file descriptors and memory stay bounded.
  app.server.maxConnections = deps.http?.maxConnections ?? DEFAULT_MAX_CONNECTIONS
  // Node stops timing requests out once the server closes (it clears its connections check), so
  // a client that never finishes its request would hold a stopping process (SIGTERM) for as long
  // as it likes: what is still open one request timeout after closing began is closed.
  app.addHook('preClose', (done) => {
    const deadline = setTimeout(() => app.server.closeAllConnections(), requestTimeoutMs)
    deadline.unref()
    app.server.once('close', () => clearTimeout(deadline))
    done()
  })
  // With request logging off, fastify's default handler no longer logs errors: do it here.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode ?? 500
    if (status >= 500) {
      request.log.error({ err: error, reqId: request.id }, 'request failed')
      // The cause is for the log: its message may name files, hosts or internals.
      return reply.code(status).send({ error: 'internal_error', message: 'internal error' })
    }
    return reply.code(status).send({ error: error.code ?? 'bad_request', message: error.message })
  })
  // The service owns the instance (starts it after listening) and serves its own registry.
  void app.register(cbcJwtPlugin, { cbc: deps.cbc, registry: false })
  operationsRoutes(app, deps)
  keyRoutes(app, deps.cbc)
  // Forward auth is answered on the server before fastify's routing (a gateway asks once per
  // request it forwards; see routes/forward-auth.ts), and by the same answer as routes for
  // `inject` and for paths fastify decodes to /v1/auth.
  const answerForwardAuth = forwardAuthAnswer(deps.cbc, deps.logger)
  answerForwardAuthFirst(app.server, answerForwardAuth)
  void app.register(async (scope) => {
    whoamiRoute(scope)
    forwardAuthRoutes(scope, answerForwardAuth)
  })
  return app
}
