/**
 * One HTTP server of the peer benchmark, run as its own process so that every contender has
 * the same machine to itself while it is measured:
 *
 *   node --import tsx bench/peers/server.ts <kind> <keyset-file> <alg> <cache: on|off>
 *
 * Prints `LISTENING <url>` once it serves. Every kind answers `GET /healthz` and a protected
 * `GET /v1/whoami` with the same JSON (sub, client_id, scope, kid, iat, exp), verifying the
 * bearer token against the same key with the same issuer/audience rules.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import fastifyJwt from '@fastify/jwt'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { createVerifier as createFastJwtVerifier } from 'fast-jwt'
import { importJWK, jwtVerify } from 'jose'
import { createFileBackend } from '../../src/lib/backends/file-backend.js'
import { DEFAULTS, type ServiceConfig } from '../../src/lib/config.js'
import { createLogger } from '../../src/server/logger.js'
import { createService } from '../../src/server/service.js'

export const PEER_KINDS = ['bare-fastify', 'jose-hook', 'fastify-jwt', 'fast-jwt-hook', 'cbc-jwt'] as const
export type PeerKind = (typeof PEER_KINDS)[number]

const ISSUER = DEFAULTS.issuer
const AUDIENCE = DEFAULTS.audience
/** Peers with a cache get the same size as the product's default. */
const CACHE_ENTRIES = DEFAULTS.tokenCacheEntries

type Claims = Record<string, unknown>
const body = (c: Claims, kid: unknown) => ({ sub: c.sub ?? null, client_id: c.client_id ?? null, scope: c.scope ?? null, kid, iat: c.iat, exp: c.exp })
const bearer = (request: FastifyRequest) => /^Bearer[ \t]+(\S+)/i.exec(request.headers.authorization ?? '')?.[1]
const unauthorized = (reply: FastifyReply) => reply.code(401).header('www-authenticate', 'Bearer error="invalid_token"').send({ error: 'invalid_token' })

async function main() {
  const [kind, keysetFile, alg, cacheArg] = process.argv.slice(2) as [PeerKind, string, string, string]
  const cache = cacheArg === 'on'
  const doc = JSON.parse(fs.readFileSync(keysetFile, 'utf8')) as { keys: Array<{ kid: string; jwk: crypto.JsonWebKey }> }
  const entry = doc.keys[0]!
  const privateJwk = entry.jwk
  const secretOrPublic = alg.startsWith('HS')
    ? crypto.createSecretKey(Buffer.from(String(privateJwk.k), 'base64url'))
    : crypto.createPublicKey({ key: privateJwk, format: 'jwk' })
  const pemOrSecret = alg.startsWith('HS') ? secretOrPublic.export() : (secretOrPublic.export({ type: 'spki', format: 'pem' }) as string)

  let url: string
  if (kind === 'cbc-jwt') {
    const config: ServiceConfig = {
      ...DEFAULTS,
      port: 0,
      host: '127.0.0.1',
      keysetFile,
      logLevel: 'info', // the production default: rejections one line, accepted requests a 1 % sample
      // An operator's own sampling rate can be measured: CBC_JWT_SUCCESS_LOG_SAMPLE=0.001 npm run bench.
      successLogSample: process.env.CBC_JWT_SUCCESS_LOG_SAMPLE ? Number(process.env.CBC_JWT_SUCCESS_LOG_SAMPLE) : DEFAULTS.successLogSample,
      tokenCacheEntries: cache ? CACHE_ENTRIES : 0,
    }
    const service = createService({ config, backend: createFileBackend(keysetFile), logger: createLogger(config.logLevel) })
    url = await service.start()
  } else {
    const app = Fastify({ logger: false })
    app.get('/healthz', async () => ({ status: 'ok' }))
    if (kind === 'bare-fastify') {
      // No verification at all: the ceiling every verifying server is measured against.
      app.get('/v1/whoami', async () => ({ sub: null, client_id: null, scope: null, kid: null, iat: null, exp: null }))
    } else if (kind === 'jose-hook') {
      const key = await importJWK(secretOrPublic.export({ format: 'jwk' }) as Parameters<typeof importJWK>[0], alg)
      const options = { issuer: ISSUER, audience: AUDIENCE, algorithms: [alg] }
      app.get('/v1/whoami', async (request, reply) => {
        const token = bearer(request)
        if (!token) return unauthorized(reply)
        try {
          const { payload, protectedHeader } = await jwtVerify(token, key, options)
          return body(payload, protectedHeader.kid)
        } catch {
          return unauthorized(reply)
        }
      })
    } else if (kind === 'fastify-jwt') {
      await app.register(fastifyJwt, {
        secret: alg.startsWith('HS') ? (pemOrSecret as Buffer) : { public: pemOrSecret as string, private: 'unused' },
        verify: { algorithms: [alg as 'ES256'], allowedIss: ISSUER, allowedAud: AUDIENCE, complete: true, ...(cache ? { cache: CACHE_ENTRIES } : {}) },
      })
      app.get('/v1/whoami', async (request, reply) => {
        try {
          const decoded = (await request.jwtVerify({ complete: true })) as unknown as { header: Claims; payload: Claims }
          return body(decoded.payload, decoded.header.kid)
        } catch {
          return unauthorized(reply)
        }
      })
    } else if (kind === 'fast-jwt-hook') {
      const verify = createFastJwtVerifier({
        key: pemOrSecret,
        algorithms: [alg as 'ES256'],
        allowedIss: ISSUER,
        allowedAud: AUDIENCE,
        complete: true,
        cache: cache ? CACHE_ENTRIES : false,
      })
      app.get('/v1/whoami', async (request, reply) => {
        const token = bearer(request)
        if (!token) return unauthorized(reply)
        try {
          const decoded = verify(token) as { header: Claims; payload: Claims }
          return body(decoded.payload, decoded.header.kid)
        } catch {
          return unauthorized(reply)
        }
      })
    } else {
      throw new Error(`unknown kind ${kind}`)
    }
    url = await app.listen({ port: 0, host: '127.0.0.1' })
  }
  process.stdout.write(`LISTENING ${url}\n`)
  process.on('SIGTERM', () => process.exit(0))
}

// Run only as a program: bench/peers/run.ts imports PEER_KINDS from here.
if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
