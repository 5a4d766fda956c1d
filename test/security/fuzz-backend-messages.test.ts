// Property: whatever a hostile Kubernetes API, proxy or webhook writes in a Status message, and
// whatever Vault (or a proxy in front of it) writes in `errors` — terminal escapes, C0/C1
// controls, bidi overrides, zero-width characters, lone surrogates, a flood, the credential
// itself — the error cbc-jwt prints holds only printable ASCII, is bounded, and never shows the
// credential, in part or whole. Through the real clients: the Kubernetes keyset backend and the
// projection writer against the API double, and Vault's failure classification.
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import fc from 'fast-check'
import { createKubernetesBackend, kubernetesOptionsFromEnv } from '../../src/lib/backends/kubernetes/index.js'
import { redact, statusFailure } from '../../src/lib/backends/vault/classify.js'
import type { KeysetBackend } from '../../src/lib/backends/backend.js'
import { createProjectionSecretBackend } from '../../src/ops/projection/kubernetes-secret.js'
import { serializeKeyset } from '../../src/lib/keyset/serialize.js'
import { coverage, fuzzParameters, fuzzSample, hostileText } from '../support/fuzz.js'
import { startKubeDouble, type KubeDouble } from '../support/kube-double.js'
import { makeKey, makeKeyset } from '../support/keys.js'

const PRINTABLE = /^[\x20-\x7e]*$/
const KEYSET = serializeKeyset(makeKeyset([makeKey('ES256', 'k-fuzz-msg')]) as never)

/** No run of 8 or more characters of the secret is in the text. */
function assertNoSecret(text: string, secret: string) {
  for (let i = 0; i + 8 <= secret.length; i++) assert.ok(!text.includes(secret.slice(i, i + 8)), `characters ${i}..${i + 8} of the credential printed`)
}

/** A hostile message: foreign text with the credential somewhere inside, sometimes a flood. */
const hostileMessage = (secret: string) =>
  fc
    .tuple(hostileText(), hostileText(), fc.boolean(), fc.nat({ max: 3000 }))
    .map(([before, after, withSecret, flood]) => `${before}${withSecret ? ` ${secret} ` : ''}${after}${'x'.repeat(flood)}`)

describe('fuzz: hostile backend messages', () => {
  describe('Kubernetes: Status messages through the keyset backend and the projection writer', () => {
    let double: KubeDouble
    let dir: string
    let env: NodeJS.ProcessEnv
    before(async () => {
      double = await startKubeDouble()
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbc-fuzz-msg-'))
      env = { KUBECONFIG: double.writeKubeconfig(path.join(dir, 'kubeconfig'), { namespace: 'cbc' }), HOME: dir }
      double.setSecret('cbc', 'cbc-secrets', { 'jwt-keyset': KEYSET })
      double.setSecret('cbc', 'cbc-jwt-verification', { 'jwt-keyset': KEYSET })
    })
    after(async () => {
      double.deny.clear()
      double.statusMessageSuffix = ''
      await double.close()
      fs.rmSync(dir, { recursive: true, force: true })
    })

    const writers: Array<[string, () => KeysetBackend]> = [
      ['the keyset backend', () => createKubernetesBackend(kubernetesOptionsFromEnv(env), { env })],
      [
        'the projection writer',
        () => createProjectionSecretBackend({ namespace: 'cbc', secret: 'cbc-jwt-verification', key: 'jwt-keyset', timeoutMs: 5000 }, env),
      ],
    ]
    for (const [name, make] of writers) {
      it(`${name}: a refused write and a refused read print escaped, bounded, credential-free errors`, async () => {
        const counts = { cases: 0, withSecret: 0 }
        for (const message of fuzzSample(hostileMessage(double.token), 40)) {
          counts.cases++
          if (message.includes(double.token)) counts.withSecret++
          const backend = make()
          try {
            const snapshot = await backend.read()
            double.statusMessageSuffix = ` ${message}`
            for (const verb of ['update', 'get'] as const) {
              double.deny.add(verb)
              const attempt = verb === 'update' ? backend.write(KEYSET, snapshot.version) : backend.read()
              await assert.rejects(attempt, (err: Error) => {
                assert.match(err.message, PRINTABLE, JSON.stringify(err.message))
                assertNoSecret(err.message, double.token)
                assert.ok(err.message.length < 900, `${err.message.length} characters`)
                return true
              })
              double.deny.clear()
            }
          } finally {
            double.deny.clear()
            double.statusMessageSuffix = ''
            await backend.close()
          }
        }
        coverage(`kubernetes-messages ${name}`, counts)
        assert.ok(counts.withSecret > 0, 'no case carried the credential')
      })
    }
  })

  it('Vault: any errors array, with the token anywhere in it, prints escaped, bounded, token-free', () => {
    const token = 'hvs.CAESIJlWh2Vq5LZ8Jx0tA1b2c3d4e5f6g7h8i9j0kLmNoPqRsTuVwXyZ'
    fc.assert(
      fc.property(fc.array(hostileMessage(token), { minLength: 1, maxLength: 4 }), fc.constantFrom(400, 403, 500, 503), (errors, status) => {
        const err = redact(statusFailure(status, { errors }, 'read vault:secret/cbc').error, [token])
        assert.match(err.message, PRINTABLE, JSON.stringify(err.message))
        assertNoSecret(err.message, token)
        assert.ok(err.message.length < 600, `${err.message.length} characters`)
      }),
      fuzzParameters(200),
    )
  })
})
