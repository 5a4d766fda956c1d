/**
 * The gateway configurations the gateway bench runs: the API (a fixed answer, the same
 * upstream for every contender), nginx proxying with no authentication, the nginx block of
 * docs/forward-auth.md exactly as documented, and HAProxy 2.6's native `jwt_verify`.
 */
import fs from 'node:fs'
import path from 'node:path'
import { PROJECT_ROOT } from '../../test/support/service.js'

/** The documented nginx block (docs/forward-auth.md), aimed at the given ports. */
export function documentedNginxBlock(ports: { nginx: number; cbc: number; api: number }): string {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/forward-auth.md'), 'utf8')
  const m = /<!-- nginx-config:begin -->\n```nginx\n([\s\S]*?)```\n<!-- nginx-config:end -->/.exec(doc)
  if (!m) throw new Error('docs/forward-auth.md has no nginx block between the markers')
  return m[1]!
    .replaceAll('127.0.0.1:8080', `127.0.0.1:${ports.nginx}`)
    .replaceAll('127.0.0.1:8000', `127.0.0.1:${ports.cbc}`)
    .replaceAll('127.0.0.1:9000', `127.0.0.1:${ports.api}`)
}

/** The protected API every contender forwards to: a fixed small JSON answer, from nginx itself. */
export function apiBlock(port: number): string {
  return `server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {
        default_type application/json;
        return 200 '{"ok":true}\\n';
    }
}
`
}

/** nginx in front of the same API with no authentication: the ceiling. */
export function nginxAloneBlock(ports: { nginx: number; api: number }): string {
  return `upstream bench_api_plain {
    server 127.0.0.1:${ports.api};
    keepalive 32;
}
server {
    listen 127.0.0.1:${ports.nginx};
    location / {
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_pass http://bench_api_plain;
    }
}
`
}

/**
 * HAProxy's native check, configured to check what cbc-jwt checks that HAProxy can: the
 * algorithm pinned, the signature (every request: HAProxy has no cache), `iss`, `aud`, `exp`;
 * client-sent X-Auth-* headers removed and the subject passed on. One thread, keep-alive to
 * the API.
 */
export function haproxyConfig(opts: { port: number; api: number; publicKeyPem: string; issuer: string; audience: string }): string {
  return `global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend gateway
    bind 127.0.0.1:${opts.port}
    http-request del-header x-auth- -m beg
    http-request set-var(txn.bearer) http_auth_bearer
    http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('$.alg')
    http-request deny deny_status 401 unless { var(txn.alg) -m str ES256 }
    http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"${opts.publicKeyPem}") -m int 1 }
    http-request set-var(txn.iss) var(txn.bearer),jwt_payload_query('$.iss')
    http-request deny deny_status 401 unless { var(txn.iss) -m str ${opts.issuer} }
    http-request set-var(txn.aud) var(txn.bearer),jwt_payload_query('$.aud')
    http-request deny deny_status 401 unless { var(txn.aud) -m str ${opts.audience} }
    http-request set-var(txn.now) date
    http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('$.exp','int')
    http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int le 0 }
    http-request set-header X-Auth-Subject %[var(txn.bearer),jwt_payload_query('$.sub')]
    default_backend api
backend api
    server api 127.0.0.1:${opts.api}
`
}
