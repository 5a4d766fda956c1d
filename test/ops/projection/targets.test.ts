import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { KubernetesBackendOptions } from '../../../src/lib/backends/kubernetes/index.js'
import type { VaultSettings } from '../../../src/lib/backends/vault/index.js'
import { ConfigError } from '../../../src/lib/errors.js'
import { kubernetesProjections, vaultPathBeside, vaultProjection } from '../../../src/ops/projection/targets.js'

/**
 * Where the verification projection goes is configuration: a wrong value fails closed, with one
 * line naming the variable, before anything is read or written — above all a projection that
 * would replace the private keyset, or a name no Secret or namespace can have.
 */
const VAULT = { path: 'cbc/jwt-keyset' } as VaultSettings
const KUBE = { namespace: 'cbc', secret: 'cbc-secrets', key: 'jwt-keyset' } as KubernetesBackendOptions
const refused = (fn: () => unknown, message: RegExp) => assert.throws(fn, (err: unknown) => err instanceof ConfigError && message.test(err.message))

describe('projection targets: configuration fails closed', () => {
  it('Vault: a public path equal to the keyset path would replace the private keyset', () => {
    refused(() => vaultProjection(VAULT, { CBC_JWT_VAULT_PUBLIC_PATH: 'cbc/jwt-keyset' }, undefined), /must differ from CBC_JWT_VAULT_PATH/)
  })

  it('Vault: a path set but empty is refused, not taken for the default; unset is the keyset path with the suffix', () => {
    refused(
      () => vaultPathBeside(VAULT, { CBC_JWT_VAULT_PUBLIC_PATH: '  ' }, 'CBC_JWT_VAULT_PUBLIC_PATH', '-public'),
      /CBC_JWT_VAULT_PUBLIC_PATH is set but empty/,
    )
    assert.equal(vaultPathBeside(VAULT, {}, 'CBC_JWT_VAULT_PUBLIC_PATH', '-public'), 'cbc/jwt-keyset-public')
    refused(() => vaultPathBeside(VAULT, { CBC_JWT_VAULT_PUBLIC_PATH: 'cbc/a b' }, 'CBC_JWT_VAULT_PUBLIC_PATH', '-public'), /CBC_JWT_VAULT_PUBLIC_PATH/)
  })

  it('Kubernetes: a Secret name or a namespace that is no DNS name is refused; so is an empty namespace list', () => {
    refused(
      () => kubernetesProjections(KUBE, { CBC_JWT_KUBERNETES_PUBLIC_SECRET: 'Public_Keys' }),
      /CBC_JWT_KUBERNETES_PUBLIC_SECRET must be a DNS subdomain name/,
    )
    refused(() => kubernetesProjections(KUBE, { CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES: 'cbc,Orders' }), /"Orders" is not a namespace name/)
    refused(() => kubernetesProjections(KUBE, { CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES: ' ' }), /CBC_JWT_KUBERNETES_PUBLIC_NAMESPACES is set but empty/)
  })
})
