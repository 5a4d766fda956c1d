// A Kubernetes PUT answered 200 with a body that is not the Secret (a proxy or webhook in front
// of the API rewrote the answer): the write landed. The CLI says what happened, exits 0 and
// prints the audit line — before, it printed "unexpected error", exited 1 and left no audit
// trail for a change that was in force.
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startKubeDouble, type KubeDouble } from '../../support/kube-double.js'
import { cbcJwt, kubernetesKeyset, tempDir } from './cli.js'

const tmp = tempDir('kube-answer')

describe('cbc-jwt rotate against a Kubernetes API whose PUT answer is not the Secret', () => {
  let double: KubeDouble
  let env: Record<string, string>
  before(async () => {
    double = await startKubeDouble()
    env = await kubernetesKeyset(double, tmp)
  })
  after(async () => {
    double.updateAnswer = undefined
    double.beforeWrite = undefined
    double.deny.clear()
    await double.close()
    tmp.cleanup()
  })

  const stored = () => JSON.parse(Buffer.from(double.secret('cbc', 'cbc-secrets')!.data!['jwt-keyset']!, 'base64').toString())
  const auditLines = (stderr: string) =>
    stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, any>)
      .filter((e) => e.event === 'keyset_changed')

  it('the keyset read back is the one written: exit 0, a note saying what the API answered, the audit line', async () => {
    const before = stored()
    double.updateAnswer = { kind: 'Status', apiVersion: 'v1', status: 'Success', message: 'rewritten \u001b[2J' }
    try {
      const r = await cbcJwt(['rotate', '--stage', '--reason', 'CHG-7'], { env })
      assert.equal(r.code, 0, r.stderr)
      assert.match(
        r.stdout,
        /note: the API answered the write 200 with a body that is not the Secret .*; the write landed, and reading kubernetes:cbc\/cbc-secrets#jwt-keyset back shows the keyset written/,
      )
      assert.doesNotMatch(r.stdout + r.stderr, /unexpected error|\u001b/)
      const [audit] = auditLines(r.stderr)
      assert.ok(audit, r.stderr)
      assert.equal(audit.command, 'rotate --stage')
      assert.equal(audit.reason, 'CHG-7')
      assert.deepEqual(
        audit.added,
        stored()
          .keys.map((k: any) => k.kid)
          .filter((kid: string) => !before.keys.some((k: any) => k.kid === kid)),
      )
      assert.equal(stored().keys.length, before.keys.length + 1, 'the change is in force')
    } finally {
      double.updateAnswer = undefined
    }
  })

  it('a refused projection write: the Status message is escaped, bounded and never shows the bearer token', async () => {
    double.deny.add('update')
    double.statusMessageSuffix = ` \u001b[2J\u001b]0;pwned\u0007 \u009b31m \u202eevil token=${double.token} ${'x'.repeat(2000)}`
    try {
      const r = await cbcJwt(['revoke', '--issued-before', 'now'], { env })
      assert.equal(r.code, 1)
      assert.match(r.stderr, /^cbc-jwt: cannot write the verification projection .*HTTP 403/)
      // Printable ASCII, and the message's own dash.
      assert.match(r.stderr, /^[\n\x20-\x7e—]*$/, r.stderr)
      assert.ok(r.stderr.includes('\\x1b[2J') && r.stderr.includes('\\x9b31m') && r.stderr.includes('\\u202eevil'), r.stderr)
      assert.ok(!r.stderr.includes(double.token), 'the bearer token printed')
      assert.ok(r.stderr.length < 900, `${r.stderr.length} characters`)
    } finally {
      double.deny.clear()
      double.statusMessageSuffix = ''
    }
  })

  it('the keyset cannot be read back: exit 0 all the same (it landed), the note says to check, the audit line is printed', async () => {
    double.updateAnswer = { kind: 'Status', apiVersion: 'v1', status: 'Success' }
    // Every read after the second write (the projection's, then the last good copy's) is refused:
    // the private write needs none, its read-back fails.
    let writes = 0
    double.beforeWrite = () => {
      if (++writes === 2) double.deny.add('get')
    }
    try {
      const r = await cbcJwt(['revoke', '--issued-before', 'now'], { env })
      assert.equal(r.code, 0, r.stderr)
      assert.match(
        r.stdout,
        /note: the API answered the write 200 with a body that is not the Secret .*but reading .* back does not show the keyset written .*cbc-jwt status/,
      )
      assert.equal(auditLines(r.stderr).length, 1, r.stderr)
    } finally {
      double.updateAnswer = undefined
      double.beforeWrite = undefined
      double.deny.clear()
    }
    assert.ok(stored().revoked_before, 'the revocation is in force')
  })
})

// The same rewritten answer to a create (keyset init's POSTs): before, the 201 body was taken for
// the Secret, and init printed "cannot write the verification projection …: Cannot read
// properties of undefined (reading 'resourceVersion')" and exited 1 with both Secrets created.
describe('cbc-jwt keyset init against a Kubernetes API whose create answer is not the Secret', () => {
  const tmpInit = tempDir('kube-create-answer')
  let double: KubeDouble
  let env: Record<string, string>
  before(async () => {
    double = await startKubeDouble()
    env = { CBC_JWT_BACKEND: 'kubernetes', KUBECONFIG: double.writeKubeconfig(tmpInit.file('kubeconfig'), { namespace: 'cbc' }), HOME: tmpInit.dir }
  })
  after(async () => {
    double.createAnswer = undefined
    await double.close()
    tmpInit.cleanup()
  })

  it('attack: a create answered 201 with a Status: exit 0, each Secret read back, a note saying what the API answered', async () => {
    double.createAnswer = { kind: 'Status', apiVersion: 'v1', status: 'Success', message: 'rewritten \u001b[2J' }
    const r = await cbcJwt(['keyset', 'init'], { env })
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /^wrote the verification projection kubernetes:cbc\/cbc-jwt-verification#jwt-keyset$/m)
    assert.match(
      r.stdout,
      /^note: the API answered the write 201 with a body that is not the Secret .*; the write landed, and reading kubernetes:cbc\/cbc-secrets#jwt-keyset back shows the keyset written$/m,
    )
    assert.doesNotMatch(r.stdout + r.stderr, /unexpected error|Cannot read|\u001b/)
    const kid = JSON.parse(Buffer.from(double.secret('cbc', 'cbc-secrets')!.data['jwt-keyset']!, 'base64').toString()).current
    assert.match(r.stdout, new RegExp(`^created kubernetes:cbc/cbc-secrets#jwt-keyset: ES256 key ${kid} \\(current\\)$`, 'm'))
  })
})
