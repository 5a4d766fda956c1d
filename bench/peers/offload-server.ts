/**
 * A/B server for choosing, per algorithm, whether signature checks run on the threadpool:
 * fastify + the cbc-jwt verifier (cache off) as a hook, `inline` or `threadpool`.
 *   node --import tsx bench/peers/offload-server.ts <keyset-file> <inline|threadpool>
 */
import fs from 'node:fs'
import Fastify from 'fastify'
import { DEFAULTS } from '../../src/lib/config.js'
import { loadKeyset } from '../../src/lib/keyset/load.js'
import { createVerifier } from '../../src/lib/verifier/verifier.js'

const [file, mode] = process.argv.slice(2) as [string, string]
const keyset = loadKeyset(JSON.parse(fs.readFileSync(file, 'utf8')))
const verifier = createVerifier({ ...DEFAULTS, trustedIssuers: [], tokenCacheEntries: 0, ...(mode === 'inline' ? { threadpoolFamilies: [] } : {}) })
const app = Fastify({ logger: false })
app.get('/v1/whoami', async (request, reply) => {
  const token = /^Bearer (\S+)/.exec(request.headers.authorization ?? '')?.[1] ?? ''
  const result = await verifier.verify(token, keyset)
  if (!result.ok) return reply.code(401).send({ error: 'invalid_token', reason: result.reason })
  return { sub: result.claims.sub, kid: result.kid }
})
void app.listen({ port: 0, host: '127.0.0.1' }).then((url) => process.stdout.write(`LISTENING ${url}\n`))
process.on('SIGTERM', () => process.exit(0))
