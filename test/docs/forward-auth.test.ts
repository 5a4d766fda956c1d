import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { describe, it } from 'node:test'
import { identityHeaders } from '../../src/server/identity-headers.js'
import { PROJECT_ROOT } from '../support/service.js'

describe('docs/forward-auth.md', () => {
  const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs/forward-auth.md'), 'utf8')

  it('documents exactly the identity headers the code can send', () => {
    const documented = [...doc.matchAll(/^\| `(X-Auth-[A-Za-z-]+)` \|/gm)].map((m) => m[1]!.toLowerCase()).sort()
    const full = identityHeaders('k', { sub: 's', client_id: 'c', scope: 'a b', iat: 1, exp: 2 })
    assert.deepEqual(documented, Object.keys(full).sort())
  })

  it('every nginx auth_request_set reads a header the code sends (or X-Auth-Reason)', () => {
    const sent = new Set([...Object.keys(identityHeaders('k', { sub: 's', client_id: 'c', scope: 'a', iat: 1, exp: 2 })), 'x-auth-reason'])
    const read = [...doc.matchAll(/\$upstream_http_(x_auth_[a-z_]+)/g)].map((m) => m[1]!.replaceAll('_', '-'))
    assert.ok(read.length >= 6)
    for (const header of read) assert.ok(sent.has(header), header)
  })
})
