/**
 * `cbc-jwt/server`: the service as a library — the Fastify app with every route of README.md
 * ("What it serves") and docs/forward-auth.md, built on `createCbcJwt`. Loads Fastify and pino; the root entry does not.
 */
export { createService, type Service } from './service.js'
export { buildApp, MAX_HEADER_BYTES, type AppDeps } from './app.js'
export { createLogger } from './logger.js'
export { identityHeaders } from './identity-headers.js'
export { createBackendFromConfig } from '../lib/backends/from-config.js'
export { serviceConfigFromEnv, listenConfigFromEnv, type ServiceConfig, type ListenConfig } from '../lib/config.js'
