import https from 'node:https'
import type { AddressInfo } from 'node:net'
import type { TestKey } from './keys.js'
import type { TestTls } from './test-tls.js'

/** The public JWK of a test key, as an issuer publishes it: no private member, with kid and alg. */
export function publishedJwk(key: TestKey): Record<string, unknown> {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...rest } = key.jwk as Record<string, unknown>
  return { ...rest, kid: key.kid, alg: key.alg, use: 'sig' }
}

export interface JwksServer {
  /** Its https origin: the issuer, with a discovery document naming itself. */
  issuer: string
  /** Replaces the published keys. */
  publish(keys: TestKey[]): void
  /** Paths asked for so far. */
  readonly requests: string[]
  close(): Promise<void>
}

/** A minimal OpenID issuer over TLS on loopback: a discovery document and a JWK Set. */
export async function startJwksServer(tls: TestTls, keys: TestKey[]): Promise<JwksServer> {
  let jwks = JSON.stringify({ keys: keys.map(publishedJwk) })
  const requests: string[] = []
  let issuer = ''
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    requests.push(req.url ?? '')
    if (req.url === '/.well-known/openid-configuration')
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks` }))
    else if (req.url === '/jwks') res.writeHead(200, { 'content-type': 'application/json' }).end(jwks)
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  issuer = `https://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    issuer,
    requests,
    publish: (next) => void (jwks = JSON.stringify({ keys: next.map(publishedJwk) })),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
