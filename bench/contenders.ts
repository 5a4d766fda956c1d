import crypto from 'node:crypto'
import { createVerifier as createFastJwtVerifier } from 'fast-jwt'
import { importJWK, jwtVerify } from 'jose'
import { DEFAULTS } from '../src/lib/config.js'
import { p1363ToDer } from '../src/lib/verifier/ecdsa-der.js'
import { createVerifier } from '../src/lib/verifier/verifier.js'
import { AUDIENCE, ISSUER, type Fixture } from './fixtures.js'

/** One verifier under test. `verify` returns something truthy for an accepted token. */
export interface Contender {
  name: ContenderName
  async: boolean
  verify(token: string): unknown
}

export const CONTENDERS = ['floor', 'cbc-jwt', 'fast-jwt', 'jose'] as const
export type ContenderName = (typeof CONTENDERS)[number]

/** Builds every contender for one fixture; all keys are imported here, once. */
export async function makeContenders(f: Fixture): Promise<Contender[]> {
  const list: Contender[] = [
    { name: 'floor', async: false, verify: floor(f) },
    { name: 'cbc-jwt', async: false, verify: cbcJwt(f) },
    { name: 'fast-jwt', async: false, verify: fastJwt(f) },
    { name: 'jose', async: true, verify: await jose(f) },
  ]
  for (const c of list) await assertAccepts(c, f.token)
  return list
}

/** A benchmark of rejections is worthless: every contender must accept the token first. */
async function assertAccepts(c: Contender, token: string): Promise<void> {
  let result: unknown
  try {
    result = await c.verify(token)
  } catch (err) {
    throw new Error(`${c.name} rejected the benchmark token: ${(err as Error).message}`, { cause: err })
  }
  if (!result || (typeof result === 'object' && 'ok' in result && result.ok !== true)) {
    throw new Error(`${c.name} rejected the benchmark token: ${JSON.stringify(result)}`)
  }
}

/**
 * The minimum any verifier must do, in plain node:crypto: split, base64url-decode and
 * JSON.parse header and payload, then HMAC + timingSafeEqual or crypto.verify with the
 * pre-imported KeyObject (ES256's r‖s as DER, the cheaper form on Node 24:
 * src/lib/verifier/ecdsa-der.ts). No checks beyond the signature.
 */
function floor(f: Fixture): (token: string) => boolean {
  const key = f.verifyKey
  const check: (input: string, sig: Buffer) => boolean =
    f.alg === 'HS256'
      ? (input, sig) => {
          const mac = crypto.createHmac('sha256', key).update(input).digest()
          return sig.length === mac.length && crypto.timingSafeEqual(mac, sig)
        }
      : f.alg === 'ES256'
        ? (input, sig) => crypto.verify('sha256', Buffer.from(input), key, p1363ToDer(sig))
        : f.alg === 'RS256'
          ? (input, sig) => crypto.verify('sha256', Buffer.from(input), key, sig)
          : (input, sig) => crypto.verify(null, Buffer.from(input), key, sig)
  return (token) => {
    const dot1 = token.indexOf('.')
    const dot2 = token.indexOf('.', dot1 + 1)
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot1), 'base64url').toString())
    const payload: unknown = JSON.parse(Buffer.from(token.slice(dot1 + 1, dot2), 'base64url').toString())
    return check(token.slice(0, dot2), Buffer.from(token.slice(dot2 + 1), 'base64url')) && header !== null && payload !== null
  }
}

/**
 * The service's own path: kid lookup, header checks, signature, claims, on a loaded keyset.
 * Cold and on this thread, like every other contender here: no token cache (fast-jwt's is off
 * too) and no threadpool (this measures the cost of a verification, not its placement; the
 * HTTP benchmark with peers measures the threadpool).
 */
function cbcJwt(f: Fixture): (token: string) => unknown {
  const verifier = createVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    clockToleranceSeconds: DEFAULTS.clockToleranceSeconds,
    maxTokenBytes: DEFAULTS.maxTokenBytes,
    tokenCacheEntries: 0,
    threadpoolFamilies: [],
  })
  return (token) => verifier.verify(token, f.keyset)
}

/** fast-jwt without its token cache, the key given once (PEM for asymmetric), one algorithm. */
function fastJwt(f: Fixture): (token: string) => unknown {
  const key = f.alg === 'HS256' ? f.verifyKey.export() : (f.verifyKey.export({ type: 'spki', format: 'pem' }) as string)
  return createFastJwtVerifier({ key, algorithms: [f.alg], cache: false, allowedIss: ISSUER, allowedAud: AUDIENCE })
}

/** jose's jwtVerify (async) with a key imported once. */
async function jose(f: Fixture): Promise<(token: string) => Promise<unknown>> {
  const key = await importJWK(f.verifyKey.export({ format: 'jwk' }), f.alg)
  const options = { issuer: ISSUER, audience: AUDIENCE, algorithms: [f.alg] }
  return (token) => jwtVerify(token, key, options)
}
