import type crypto from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type { AddressInfo } from 'node:net'
import Provider from 'oidc-provider'
import type { TestTls } from './test-tls.js'

/** A client of the provider allowed the client-credentials grant. */
export const OIDC_CLIENT = { id: 'orders-batch', secret: 'orders-batch-secret-0123456789abcdef' } as const

export interface OidcIssuerOptions {
  /** Serve over TLS with this certificate; without it, plain http on loopback (a sidecar provider). */
  tls?: TestTls
  /** Private JWKs; the first one signs. */
  keys: crypto.JsonWebKey[]
  /** The `aud` of its access tokens. */
  audience: string
  /** Keep the address of an earlier run (a restart after a key rotation). */
  port?: number
  /** Signing algorithm of the access tokens. @default 'ES256' */
  alg?: string
}

export interface RunningOidcIssuer {
  issuer: string
  port: number
  /** A client-credentials access token (a JWT, RFC 9068) for `scope`. */
  token(scope?: string): Promise<string>
  stop(): Promise<void>
}

/**
 * The real `oidc-provider` (the certified Node.js OpenID provider) on loopback over TLS (or plain
 * http), issuing client-credentials access tokens as JWTs through resource indicators — what a
 * company IdP does.
 */
export async function startOidcIssuer(opts: OidcIssuerOptions): Promise<RunningOidcIssuer> {
  const tls = opts.tls
  const server = tls ? https.createServer({ cert: tls.cert, key: tls.key }) : http.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`
  const resource = 'https://orders.example/'
  const alg = opts.alg ?? 'ES256'
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: OIDC_CLIENT.id,
        client_secret: OIDC_CLIENT.secret,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: alg,
      },
    ],
    jwks: { keys: opts.keys as never },
    scopes: ['orders:read', 'orders:write'],
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'orders:read orders:write',
          audience: opts.audience,
          accessTokenTTL: 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg } },
        }),
      },
    },
  })
  // oidc-provider logs through its events; a test has no use for them.
  provider.on('server_error', () => {})
  server.on('request', provider.callback())
  const ca = tls?.ca
  return {
    issuer,
    port,
    async token(scope = 'orders:read') {
      const body = new URLSearchParams({ grant_type: 'client_credentials', scope, resource })
      const basic = Buffer.from(`${OIDC_CLIENT.id}:${OIDC_CLIENT.secret}`).toString('base64')
      const text = await new Promise<string>((resolve, reject) => {
        const req = (tls ? https : http).request(
          `${issuer}/token`,
          {
            method: 'POST',
            ...(ca ? { ca } : {}),
            agent: false,
            headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
          },
          (res) => {
            let data = ''
            res.setEncoding('utf8')
            res.on('data', (d: string) => (data += d))
            res.on('end', () => (res.statusCode === 200 ? resolve(data) : reject(new Error(`token endpoint answered ${res.statusCode}: ${data}`))))
          },
        )
        req.on('error', reject)
        req.end(body.toString())
      })
      return (JSON.parse(text) as { access_token: string }).access_token
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
