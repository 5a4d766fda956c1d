import crypto from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { signToken, validClaims, type TestAlg, type TestKey } from './keys.js'
import type { RunningService } from './service.js'

interface KeysetLike {
  current: string
  keys: Array<{ kid: string; alg: string; jwk: unknown }>
}

export interface ClientReport {
  sent: number
  /** One line per answer other than 200: replica, status, body, kid. */
  failures: string[]
  /** The kids whose tokens were sent. */
  kids: Set<string>
}

/**
 * A client that always holds a fresh token: each request is signed with whatever key is
 * `current` in the keyset `read()` returns at that moment (the secret itself), sent to each
 * replica in turn until `stop()`. A 401 it gets is a false one: the token is as good as the
 * secret's current key. Signing is done here, with `node:crypto` (test/support/keys.ts).
 */
export function startTokenClient(
  replicas: readonly RunningService[],
  read: () => KeysetLike,
  opts: { pauseMs?: number } = {},
): { stop(): Promise<ClientReport> } {
  const signers = new Map<string, TestKey>()
  const signer = (): TestKey => {
    const doc = read()
    const entry = doc.keys.find((k) => k.kid === doc.current)!
    let key = signers.get(entry.kid)
    if (!key) {
      const jwk = entry.jwk as crypto.JsonWebKey
      key = { kid: entry.kid, alg: entry.alg as TestAlg, jwk, signingKey: crypto.createPrivateKey({ key: jwk, format: 'jwk' }) }
      signers.set(entry.kid, key)
    }
    return key
  }
  const report: ClientReport = { sent: 0, failures: [], kids: new Set() }
  let running = true
  const loop = (async () => {
    for (let i = 0; running; i++) {
      const key = signer()
      report.kids.add(key.kid)
      const r = replicas[i % replicas.length]!
      const res = await r.get('/v1/whoami', { authorization: `Bearer ${signToken(key, validClaims())}` })
      report.sent++
      if (res.status !== 200) report.failures.push(`${r.url} ${res.status} ${res.body} (kid ${key.kid})`)
      await sleep(opts.pauseMs ?? 10)
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      return report
    },
  }
}
