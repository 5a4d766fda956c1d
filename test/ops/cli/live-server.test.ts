import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { generateKeyset } from '../../../src/lib/keyset/generate.js'
import { serializeKeyset } from '../../../src/lib/keyset/serialize.js'
import { KubeletVolume } from '../../support/kubelet-volume.js'
import { startService, type RunningService } from '../../support/service.js'
import { waitFor } from '../../support/wait.js'
import { cbcJwt, tempDir } from './cli.js'
import { PROCESS_LEVEL } from '../../support/tier.js'

/**
 * The CLI against the real service: the keyset goes from the "secret" through
 * `cbc-jwt … -` and back into a Kubernetes-style secret volume, as in the documented
 * kubectl pipeline; the service picks it up from the volume.
 */
const tmp = tempDir('live')
const services: RunningService[] = []
after(async () => {
  await Promise.all(services.map((s) => s.stop()))
  tmp.cleanup()
})

async function liveService(name: string) {
  const volume = new KubeletVolume(tmp.file(name))
  const text = serializeKeyset(await generateKeyset('ES256', new Date(Date.now() - 3600_000)))
  volume.writeKeyset(text)
  const service = await startService({ env: { CBC_JWT_KEYSET_FILE: volume.file(), CBC_JWT_REFRESH_INTERVAL_SECONDS: '1' } })
  services.push(service)
  return { volume, service, text, kid: JSON.parse(text).current as string }
}

async function issue(keyset: string, sub: string): Promise<string> {
  const r = await cbcJwt(['token', 'issue', '--sub', sub, '--scope', 'read', '-'], { input: keyset })
  assert.equal(r.code, 0, r.stderr)
  return r.stdout.trim()
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

/** Waits until the service's current key is `kid`. */
async function servesCurrent(service: RunningService, kid: string) {
  await waitFor(async () => (await service.get('/v1/keys')).json?.current === kid, { timeoutMs: 8000, what: `current = ${kid}` })
}

describe('cbc-jwt against a running service', { concurrency: true, ...PROCESS_LEVEL }, () => {
  it('token issue is accepted; verify-rotation fails on the old kid and passes after a real rotation', async () => {
    const { volume, service, text, kid: previous } = await liveService('rotation')
    const legacy = await issue(text, 'legacy-user')
    const whoami = await service.get('/v1/whoami', bearer(legacy))
    assert.equal(whoami.status, 200, whoami.body)
    assert.deepEqual([whoami.json.sub, whoami.json.client_id, whoami.json.scope, whoami.json.kid], ['legacy-user', 'legacy-user', 'read', previous])

    const check = ['verify-rotation', '--url', service.url, '--previous-kid', previous, '--legacy-token', legacy]
    const before = await cbcJwt(check)
    assert.equal(before.code, 1, before.stderr)
    assert.match(before.stdout, new RegExp(`^✗ 1\\. active key: kid ${previous} \\(previous ${previous}\\), age 1h\\S*: still the previous kid`, 'm'))
    assert.match(before.stdout, /^✗ 2\. keys loaded: cbc_jwt_keys_loaded 1, verifying keys in \/v1\/keys 1 .*expected at least 2/m)
    assert.match(before.stdout, /^✓ 3\. legacy token: \/v1\/whoami answered 200/m)
    assert.match(before.stdout, /^✓ 4\. backend errors: cbc_jwt_backend_errors_total 0$/m)
    assert.match(before.stdout, /^✗ 5\. rotations: cbc_jwt_key_rotations_total 0/m)
    assert.match(before.stdout, /^rotation NOT verified: active key, keys loaded, rotations failed$/m)
    // On the command line a still-valid token is visible to every local user (`ps`) for as long
    // as the check waits: `--legacy-token -` reads it from stdin, as `token verify -` does.
    const fromStdin = await cbcJwt([...check.slice(0, -1), '-'], { input: `${legacy}\n` })
    assert.match(fromStdin.stdout, /^✓ 3\. legacy token: \/v1\/whoami answered 200/m)

    const rotated = await cbcJwt(['rotate', '-'], { input: text })
    assert.equal(rotated.code, 0, rotated.stderr)
    const next = JSON.parse(rotated.stdout).current as string
    volume.writeKeyset(rotated.stdout)

    const passed = await cbcJwt([...check, '--wait', '10s'])
    assert.equal(passed.code, 0, passed.stdout)
    const lines = passed.stdout.trim().split('\n')
    assert.equal(lines.length, 6)
    assert.match(lines[0]!, new RegExp(`^✓ 1\\. active key: kid ${next} \\(previous ${previous}\\), age \\d+m?s <= 10m$`))
    assert.match(lines[1]!, new RegExp(`^✓ 2\\. keys loaded: cbc_jwt_keys_loaded 2, verifying keys in /v1/keys 2 \\(${next}, ${previous}\\)$`))
    assert.match(lines[2]!, new RegExp(`^✓ 3\\. legacy token: /v1/whoami answered 200 \\(kid ${previous}\\)$`))
    assert.equal(lines[3], '✓ 4. backend errors: cbc_jwt_backend_errors_total 0')
    assert.equal(lines[4], '✓ 5. rotations: cbc_jwt_key_rotations_total 1 >= 1')
    assert.equal(lines[5], 'rotation verified')

    const newToken = await issue(rotated.stdout, 'new-user')
    const fresh = await service.get('/v1/whoami', bearer(newToken))
    assert.equal(fresh.status, 200)
    assert.equal(fresh.json.kid, next)

    // A "legacy" token signed by the new key would pass item 3 and prove nothing: bad usage.
    for (const extra of [[], ['--compromised']]) {
      const wrong = await cbcJwt(['verify-rotation', '--url', service.url, '--previous-kid', previous, '--legacy-token', newToken, ...extra])
      assert.equal(wrong.code, 2, wrong.stdout + wrong.stderr)
      assert.equal(wrong.stdout, '')
      assert.match(
        wrong.stderr,
        new RegExp(`--legacy-token is signed by kid "${next}", not by a --previous-kid \\("${previous}"\\): give a token signed before the rotation`),
      )
    }
  })

  it('rotate --compromised: the old key’s token is rejected by the service, a new token is accepted', async () => {
    const { volume, service, text, kid: old } = await liveService('compromised')
    const stolen = await issue(text, 'victim')
    assert.equal((await service.get('/v1/whoami', bearer(stolen))).status, 200)

    const emergency = await cbcJwt(['rotate', '--compromised', '-'], { input: text })
    assert.equal(emergency.code, 0, emergency.stderr)
    assert.match(emergency.stderr, /^EMERGENCY rotation /)
    const doc = JSON.parse(emergency.stdout)
    volume.writeKeyset(emergency.stdout)
    await servesCurrent(service, doc.current)

    const rejected = await service.get('/v1/whoami', bearer(stolen))
    assert.equal(rejected.status, 401)
    assert.ok(['unknown_kid', 'revoked'].includes(rejected.json.reason), rejected.body)
    assert.match(rejected.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_token"/)
    const keys = (await service.get('/v1/keys')).json
    assert.equal(keys.keys.find((k: { kid: string }) => k.kid === old).verifies, false)
    assert.equal(keys.revoked_before, doc.revoked_before)

    const fresh = await service.get('/v1/whoami', bearer(await issue(emergency.stdout, 'victim')))
    assert.equal(fresh.status, 200, fresh.body)
    assert.equal(fresh.json.kid, doc.current)

    const offline = await cbcJwt(['token', 'verify', '--keyset-file', '-', stolen], { input: emergency.stdout })
    assert.equal(offline.code, 1)
    assert.match(offline.stderr, /token rejected: (unknown_kid|revoked)/)

    // The checklist's legacy-token item: the stolen token's rejection shows the key cut off; a
    // token rejected for another reason (mistyped, expired) shows nothing and must not pass.
    const check = ['verify-rotation', '--url', service.url, '--compromised', '--previous-kid', old]
    const confirmed = await cbcJwt([...check, '--legacy-token', stolen])
    assert.match(confirmed.stdout, /^✓ 3\. legacy token: \/v1\/whoami answered 401 \(reason (unknown_kid|revoked)\)/m)
    const mistyped = await cbcJwt([...check, '--legacy-token', 'not-a-token'])
    assert.match(mistyped.stdout, /^✗ 3\. legacy token: \/v1\/whoami answered 401 \(reason malformed\): .*unknown_kid or revoked/m)
    assert.equal(mistyped.code, 1)
  })

  // §9: with --replica, a staged key is promoted once every replica lists it as verifying in
  // /v1/keys, whatever its age: no time window applies (without it, the window refuses).
  it('rotate --promote --replica: refused while the replica lacks the staged key, then promoted at once, inside the window', async () => {
    const { volume, service, text, kid: old } = await liveService('gate')
    const staged = await cbcJwt(['rotate', '--stage', '-'], { input: text })
    assert.equal(staged.code, 0, staged.stderr)
    const kid = JSON.parse(staged.stdout).keys.find((k: { kid: string }) => k.kid !== old).kid as string
    const promote = (args: string[]) => cbcJwt(['rotate', '--promote', '-', ...args], { input: staged.stdout })
    const lacking = await promote(['--replica', service.url])
    assert.equal(lacking.code, 1, lacking.stderr)
    assert.match(lacking.stderr, new RegExp(`refusing to promote ${kid}: 1 of 1 replicas do not verify with it yet: ${service.url}.*nothing changed`))
    assert.equal(lacking.stdout, '')
    volume.writeKeyset(staged.stdout)
    await waitFor(async () => (await service.get('/v1/keys')).json?.keys.some((k: { kid: string; verifies: boolean }) => k.kid === kid && k.verifies), {
      timeoutMs: 8000,
      what: `${kid} in /v1/keys`,
    })
    const early = await promote([])
    assert.equal(early.code, 1, 'without the gate, the time window refuses a key staged seconds ago')
    const gated = await promote(['--replica', service.url])
    assert.equal(gated.code, 0, gated.stderr)
    assert.equal(JSON.parse(gated.stdout).current, kid)
    assert.match(gated.stderr, new RegExp(`every replica verifies with ${kid} \\(1 seen through --replica ${service.url}\\)`))
  })
})
