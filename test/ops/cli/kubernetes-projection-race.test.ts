// Two writers on the Kubernetes API: the keyset (cbc-secrets) and its verification projection
// (cbc-jwt-verification) are two Secrets, each with its own resourceVersion. A writer that read
// the same version as this one and lost the keyset's check-and-set may still publish its
// projection — computed from the version this write replaces, without this write's new key —
// between this one's projection and keyset writes. The rotation that lands must not leave it so
// (verifiers loading it would refuse every token of the key the keyset now signs with).
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { KeysetDocument } from '../../../src/lib/keyset/document.js'
import { toVerificationKeyset } from '../../../src/lib/keyset/projection.js'
import { serializeKeyset } from '../../../src/lib/keyset/serialize.js'
import { setRevokedBefore } from '../../../src/ops/rotation/revoke.js'
import { rotateNow } from '../../../src/ops/rotation/rotate.js'
import { startKubeDouble, type KubeDouble } from '../../support/kube-double.js'
import { cbcJwt, kubernetesKeyset, tempDir } from './cli.js'

const tmp = tempDir('kube-projection-race')
const DAY = 86_400_000

describe('cbc-jwt writes on Kubernetes while a losing writer publishes its projection', () => {
  let double: KubeDouble
  let env: Record<string, string>
  before(async () => {
    double = await startKubeDouble()
    env = await kubernetesKeyset(double, tmp)
  })
  after(async () => {
    double.beforeWrite = undefined
    await double.close()
    tmp.cleanup()
  })

  const read = (name: string) => JSON.parse(Buffer.from(double.secret('cbc', name)!.data['jwt-keyset']!, 'base64').toString()) as KeysetDocument

  /** Runs `args`; once its projection is published, a loser's (`stale(before)`) lands over it before its keyset write. */
  async function raced(args: string[], stale: (before: KeysetDocument) => Promise<KeysetDocument>) {
    const before = read('cbc-secrets')
    const loser = serializeKeyset(toVerificationKeyset(await stale(before)))
    let injected = false
    const rv = () => double.secret('cbc', 'cbc-jwt-verification')!.metadata.resourceVersion
    const published = rv()
    double.beforeWrite = () => {
      // The command's own projection is in (its resourceVersion moved): the loser's lands now.
      if (injected || rv() === published) return
      injected = true
      double.setSecret('cbc', 'cbc-jwt-verification', { 'jwt-keyset': loser })
    }
    try {
      const r = await cbcJwt(args, { env })
      assert.equal(r.code, 0, r.stderr)
      assert.ok(injected, 'the losing writer’s projection landed between the two writes')
      return r
    } finally {
      double.beforeWrite = undefined
    }
  }

  it('rotate: the projection it leaves holds the key the keyset now signs with (set back to the stored keyset, and said so)', async () => {
    const r = await raced(['rotate'], async (before) => (await rotateNow(before, { now: Date.now(), graceMs: DAY })).doc)
    const keyset = read('cbc-secrets')
    assert.deepEqual(read('cbc-jwt-verification'), toVerificationKeyset(keyset), 'the projection is the stored keyset’s')
    assert.match(r.stdout, /note: the verification projection \(kubernetes:cbc\/cbc-jwt-verification#jwt-keyset\) was replaced by another writer's meanwhile/)
  })

  it('revoke: the rule that exited 0 is in the projection verifiers read', async () => {
    await raced(
      ['revoke', '--client-id', 'svc-a', '--issued-before', 'now'],
      async (before) => setRevokedBefore(before, { issuedBeforeMs: Date.now() - 60_000 }).doc,
    )
    const keyset = read('cbc-secrets')
    assert.ok(keyset.revocations?.some((rule) => 'client_id' in rule && rule.client_id === 'svc-a'))
    assert.deepEqual(read('cbc-jwt-verification'), toVerificationKeyset(keyset))
  })
})
