import type { KeyObject } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { loadKeyset, type LoadedKeyset } from '../src/lib/keyset/load.js'
import { makeKey, makeKeyset, signToken, type TestAlg, type TestKey } from '../test/support/keys.js'

/** The algorithms the benchmark compares: one per family the service is deployed with. */
export const BENCH_ALGS = ['HS256', 'ES256', 'RS256', 'EdDSA'] as const satisfies readonly TestAlg[]
export type BenchAlg = (typeof BENCH_ALGS)[number]

export const ISSUER = 'cbc-omega2'
export const AUDIENCE = 'cbc-api'

export interface Fixture {
  alg: BenchAlg
  key: TestKey
  /** One token, signed once up front by test/support/keys.ts (node:crypto, not the code under test). */
  token: string
  /** The public key (or the secret) as a KeyObject, imported once. */
  verifyKey: KeyObject
  /** A keyset holding this key alone, loaded as the service loads it. */
  keyset: LoadedKeyset
  /** The keyset document (with private material), for the HTTP run's keyset file. */
  document: Record<string, unknown>
}

/**
 * The same realistic claims for every token: the registered claims the service checks plus
 * what an API gateway typically adds. Valid for an hour, so a long run never crosses `exp`.
 */
export function benchClaims(nowSeconds = Math.floor(Date.now() / 1000)): Record<string, unknown> {
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'user-7f3c2a9e-4b1d-4e8a-9c6f-2d5b8e1a0c47',
    client_id: 'cbc-web-frontend',
    azp: 'cbc-web-frontend',
    scope: 'orders:read orders:write profile:read',
    tenant: 'acme-eu-west',
    roles: ['operator', 'viewer'],
    jti: '0b9e5c1a-6d2f-4a7e-8b3c-91f04d6e2a58',
    iat: nowSeconds - 5,
    nbf: nowSeconds - 5,
    exp: nowSeconds + 3600,
  }
}

export function makeFixture(alg: BenchAlg): Fixture {
  const key = makeKey(alg, `bench-${alg.toLowerCase()}`)
  const document = makeKeyset([key])
  const keyset = loadKeyset(document)
  return { alg, key, token: signToken(key, benchClaims()), verifyKey: keyset.current.verifyKey, keyset, document }
}

/** Bytes of the token's decoded payload (the JSON claims). */
export function payloadBytes(token: string): number {
  return Buffer.from(token.split('.')[1] ?? '', 'base64url').length
}

/**
 * A file of `count` distinct tokens signed by `key`, one a line, for wrk's token scripts: each
 * token a different user and client, so a server's verified-token cache can be kept cold.
 */
export function writeTokenFile(dir: string, name: string, key: TestKey, count: number): string {
  const now = Math.floor(Date.now() / 1000)
  const lines = Array.from({ length: count }, (_, i) =>
    signToken(key, { ...benchClaims(now), sub: `user-${i}`, client_id: `client-${i % 97}`, jti: `jti-${i}` }),
  )
  const file = path.join(dir, name)
  fs.writeFileSync(file, `${lines.join('\n')}\n`)
  return file
}
