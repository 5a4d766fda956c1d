import crypto, { type JsonWebKey, type KeyObject } from 'node:crypto'
import util from 'node:util'
import { KeysetInvalidError, type KeysetProblem } from '../errors.js'
import { ALG_SPECS, PRIVATE_JWK_MEMBERS, hasSigningMaterial, type Alg, type AlgSpec } from './algorithms.js'
import { keyPolicyProblem } from './key-policy.js'
import { hasPrivateMembers, redactedKeyset, type KeysetKind } from './projection.js'
import { MAX_KEYSET_BYTES, keyStatus, type KeyEntry, type KeyStatus, type KeysetDocument } from './document.js'
import { schemaProblems } from './schema.js'
import { revocationMeaningProblems } from './revocation-rules.js'
import { duplicateMember } from './duplicate-members.js'
import { rfc3339CeilMs } from './rfc3339-ceil.js'
import { asciiJson } from '../logging/sanitize.js'
import { buildRevocationMatcher, type RevocationMatcher } from '../verifier/revocations.js'

/** A key ready for the hot path: imported once per load, never per request. */
export interface LoadedKey {
  readonly kid: string
  readonly alg: Alg
  readonly spec: AlgSpec
  readonly status: KeyStatus
  /** ms since the epoch */
  readonly createdAt: number
  /** ms since the epoch; the key stops verifying at this instant. */
  readonly notAfter: number | undefined
  /** Public key (asymmetric) or the secret (HMAC). */
  readonly verifyKey: KeyObject
  /** Private key or secret, when the entry holds signing material. */
  readonly signingKey: KeyObject | undefined
  /** Public JWK members only, for the JWKS; undefined for HMAC keys. */
  readonly publicJwk: JsonWebKey | undefined
}

export interface LoadedKeyset {
  readonly document: KeysetDocument
  readonly keys: ReadonlyMap<string, LoadedKey>
  readonly current: LoadedKey
  /** Seconds since the epoch (exact, may be fractional); tokens with an earlier `iat` are revoked. */
  readonly revokedBefore: number | undefined
  /** The `revocations` rules, indexed once per load for the request path. */
  readonly revocations: RevocationMatcher
  /**
   * False for a verification keyset (no key holds private or symmetric material): it verifies
   * with every behaviour of a signing one, but `sign()` refuses with `ERR_NO_SIGNING_KEY`.
   */
  readonly signing: boolean
}

/** Parses keyset text, size-checked first. Throws `KeysetInvalidError` (reason `invalid_json`). */
export function parseKeysetText(text: string): unknown {
  if (Buffer.byteLength(text) > MAX_KEYSET_BYTES) {
    throw new KeysetInvalidError([{ path: '', message: `document is larger than ${MAX_KEYSET_BYTES} bytes` }], 'invalid_json')
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (err) {
    // V8's message quotes the input; keep only the position so no key material reaches a log.
    const at = /position (\d+)/.exec((err as Error).message)
    throw new KeysetInvalidError([{ path: '', message: `not valid JSON${at ? ` (at position ${at[1]})` : ''}` }], 'invalid_json')
  }
  const twice = duplicateMember(text)
  if (twice !== undefined) {
    // A name, never a value: nothing of a key's material is quoted.
    throw new KeysetInvalidError(
      [
        {
          path: '',
          message: `the member ${asciiJson(twice.slice(0, 64))} appears twice in one object (RFC 7493 I-JSON: which one counts differs between readers)`,
        },
      ],
      'invalid_json',
    )
  }
  return data
}

/**
 * Validates a keyset document completely (schema and meaning) and imports every key into
 * `KeyObject`s. Throws `KeysetInvalidError` listing every problem; returns nothing partial.
 * Meaning is checked on every part the schema found sound, so one run reports a typoed field
 * and a `current` naming a missing kid together.
 *
 * With `previous` (the keyset in force), a key whose kid, alg and JWK are unchanged reuses the
 * previous import — KeyObjects, policy checks and pair self-test all passed then — so a reload
 * costs the changed keys only. Status and dates are always taken from the new document.
 *
 * @example
 * const next = loadKeyset(parseKeysetText(text), Date.now(), keyring.keyset())
 */
export function loadKeyset(data: unknown, now: number = Date.now(), previous?: LoadedKeyset): LoadedKeyset {
  const steps = loadSteps(data, now, previous)
  for (;;) {
    const step = steps.next()
    if (step.done) return step.value
  }
}

function kubernetesObjectProblem(secret: boolean): string {
  return secret
    ? "a Kubernetes Secret object, not a keyset document: the keyset is its data.jwt-keyset, base64-decoded (kubectl get secret cbc-secrets -o jsonpath='{.data.jwt-keyset}' | base64 -d)"
    : 'a Kubernetes object, not a keyset document: the keyset is the raw JSON stored in the Secret cbc-secrets under jwt-keyset'
}

/**
 * `loadKeyset` for a running server: the same validation and result, but it gives the event
 * loop a turn after every key it imports (an RSA key's checks and self-test take milliseconds),
 * so a full load never stalls in-flight requests for longer than one key. The keyring uses it.
 */
export async function loadKeysetYielding(data: unknown, now: number = Date.now(), previous?: LoadedKeyset): Promise<LoadedKeyset> {
  const steps = loadSteps(data, now, previous)
  for (;;) {
    const step = steps.next()
    if (step.done) return step.value
    await new Promise<void>((resolve) => setImmediate(resolve))
  }
}

/** The load, as steps: it yields after each key it had to import (not after a reused one). */
function* loadSteps(data: unknown, now: number, previous: LoadedKeyset | undefined): Generator<undefined, LoadedKeyset, void> {
  // `kubectl get secret -o json` where the keyset was meant: one problem saying where it is, not
  // seven symptoms (version, current, keys required; apiVersion, kind, ... unknown).
  if (isRecord(data) && typeof data.apiVersion === 'string' && typeof data.kind === 'string' && data.keys === undefined) {
    throw new KeysetInvalidError([{ path: '', message: kubernetesObjectProblem(data.kind === 'Secret') }])
  }
  const problems = schemaProblems(data)
  if (!isRecord(data) || !Array.isArray(data.keys)) throw new KeysetInvalidError(problems)
  const doc = data as unknown as KeysetDocument // sound where `sound(path)` says so
  const sound = (path: string) => !problems.some((p) => p.path === path || p.path.startsWith(`${path}.`) || p.path.startsWith(`${path}[`))
  const schemaOk = problems.length === 0
  problems.push(...unreadableDates(doc, sound), ...revocationMeaningProblems(doc, sound))
  const keys = new Map<string, LoadedKey>()
  const firstIndex = new Map<string, number>()
  for (const [i, entry] of doc.keys.entries()) {
    const at = `keys[${i}]`
    if (!isRecord(entry) || typeof entry.kid !== 'string' || !sound(`${at}.kid`)) continue
    // A duplicate is reported and its material still checked (every problem in one run), never kept.
    const seen = firstIndex.get(entry.kid)
    const checkable = sound(at)
    if (seen !== undefined) problems.push({ path: `${at}.kid`, message: `duplicate kid "${entry.kid}" (also keys[${seen}])` })
    else firstIndex.set(entry.kid, i)
    if (!checkable) continue
    const prior = seen === undefined ? previous?.keys.get(entry.kid) : undefined
    const key = importEntry(doc, entry, at, problems, prior)
    if (key && seen === undefined) keys.set(entry.kid, key)
    if (!key || key.verifyKey !== prior?.verifyKey) yield
  }
  const kind = documentKind(doc, sound, problems)
  const verification = kind === 'verification'
  const currentIndex = typeof doc.current === 'string' && sound('current') ? firstIndex.get(doc.current) : undefined
  const current = currentIndex === undefined ? undefined : keys.get(doc.current)
  if (typeof doc.current === 'string' && sound('current') && currentIndex === undefined) {
    problems.push({ path: 'current', message: `no key has kid "${doc.current}"` })
  } else if (current) {
    if (!current.signingKey && kind === 'signing') {
      problems.push({ path: `keys[${currentIndex}].jwk`, message: 'the current key must hold private or symmetric material to sign' })
    }
    if (current.notAfter !== undefined && current.notAfter <= now) {
      problems.push({ path: `keys[${currentIndex}].not_after`, message: 'the current key is past its not_after and cannot verify' })
    }
  }
  if (!schemaOk || problems.length > 0 || !current) throw new KeysetInvalidError(problems)
  return printedWithoutSecrets({
    document: doc,
    keys,
    current,
    revokedBefore: doc.revoked_before === undefined ? undefined : rfc3339CeilMs(doc.revoked_before) / 1000,
    revocations: buildRevocationMatcher(doc.revocations),
    signing: !verification,
  })
}

/**
 * A loaded keyset whose printed forms (util.inspect, JSON.stringify: a console.log, a crash
 * report, a JSON logger given it by mistake) show its document with every private or secret
 * member redacted. The document itself stays whole for the code that reads it.
 */
function printedWithoutSecrets(keyset: LoadedKeyset): LoadedKeyset {
  const printed = () => ({ ...keyset, document: redactedKeyset(keyset.document) })
  return Object.defineProperties(keyset, { [util.inspect.custom]: { value: printed }, toJSON: { value: printed } })
}

/**
 * `verification` when no key holds private or symmetric material. A document in between — some asymmetric keys private, others public, or an HS* secret beside public keys —
 * is neither: it is refused, since a signer would miss keys and a verifier would hold secrets.
 */
function documentKind(doc: KeysetDocument, sound: (path: string) => boolean, problems: KeysetProblem[]): KeysetKind {
  const secret: number[] = []
  const open: number[] = []
  doc.keys.forEach((entry, i) => {
    if (!isRecord(entry) || !isRecord(entry.jwk) || !sound(`keys[${i}].jwk`)) return
    if (entry.jwk.kty === 'oct' || hasPrivateMembers(entry.jwk)) secret.push(i)
    else open.push(i)
  })
  if (secret.length === 0) return 'verification'
  if (open.length === 0) return 'signing'
  const privateIndex = secret.find((i) => doc.keys[i]!.jwk.kty !== 'oct')
  if (privateIndex === undefined) {
    for (const i of secret) {
      problems.push({
        path: `keys[${i}].jwk`,
        message: 'an HS* (oct) key is secret by nature (it signs as well as verifies): a keyset of public keys (a verification keyset) cannot hold one',
      })
    }
  } else {
    for (const i of open) {
      problems.push({
        path: `keys[${i}].jwk`,
        message: `has no private part while keys[${privateIndex}] has one: a keyset is either for signing (every key private) or for verification (no key private), never mixed`,
      })
    }
  }
  return 'mixed'
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

const DATE_MESSAGE = 'must be an RFC 3339 date-time (e.g. 2026-11-25T21:16:00Z)'

/**
 * RFC 3339 allows what `Date.parse` cannot read (a leap second `:60`, an offset without
 * minutes). Such a date would become NaN and silently disable `not_after` or `revoked_before`
 * (every comparison with NaN is false), so it is refused here.
 */
function unreadableDates(doc: KeysetDocument, sound: (path: string) => boolean): KeysetProblem[] {
  const dates: Array<[string, unknown]> = [['revoked_before', doc.revoked_before]]
  doc.keys.forEach((k, i) => {
    if (isRecord(k)) dates.push([`keys[${i}].created_at`, k.created_at], [`keys[${i}].not_after`, k.not_after])
  })
  return dates.filter(([path, v]) => typeof v === 'string' && sound(path) && !Number.isFinite(Date.parse(v))).map(([path]) => ({ path, message: DATE_MESSAGE }))
}

function importEntry(doc: KeysetDocument, entry: KeyEntry, at: string, problems: KeysetProblem[], previous: LoadedKey | undefined): LoadedKey | undefined {
  const spec = ALG_SPECS[entry.alg]
  const jwk = entry.jwk
  const fingerprint = materialFingerprint(entry)
  const meta = {
    kid: entry.kid,
    alg: entry.alg,
    spec,
    status: keyStatus(doc, entry),
    createdAt: Date.parse(entry.created_at),
    notAfter: entry.not_after === undefined ? undefined : Date.parse(entry.not_after),
  }
  // Everything below depends on kid, alg and jwk alone: same three, same outcome as last time.
  if (previous && previous.alg === entry.alg && fingerprints.get(previous.verifyKey) === fingerprint) {
    return { ...meta, verifyKey: previous.verifyKey, signingKey: previous.signingKey, publicJwk: previous.publicJwk }
  }
  const before = problems.length
  if (jwk.kty !== spec.kty) problems.push({ path: `${at}.jwk.kty`, message: `${entry.alg} needs kty ${spec.kty}` })
  else if (spec.curves && !spec.curves.includes(String(jwk.crv))) {
    problems.push({ path: `${at}.jwk.crv`, message: `${entry.alg} needs ${spec.curves.join(' or ')}` })
  }
  // A member of another key type is no part of this key, and one of them (a `k` on an EC key)
  // is a secret that the projection would publish: refused like any unknown field.
  if (jwk.kty === spec.kty) {
    for (const name of Object.keys(jwk)) {
      if (!COMMON_JWK_MEMBERS.has(name) && !KTY_MEMBERS[spec.kty].has(name))
        problems.push({ path: `${at}.jwk.${name}`, message: `not a member of an ${spec.kty} key` })
    }
  }
  // An oct key is its `k`. Read as String(undefined), a missing one became a 6-byte secret, and
  // the problem was reported as a short secret ("got 6") instead of a missing one.
  if (jwk.kty === 'oct' && spec.kty === 'oct' && typeof jwk.k !== 'string') problems.push({ path: `${at}.jwk.k`, message: 'is required' })
  if (jwk.alg !== undefined && jwk.alg !== entry.alg) {
    problems.push({ path: `${at}.jwk.alg`, message: `${quoted(jwk.alg)} differs from the key's alg "${entry.alg}"` })
  }
  if (jwk.kid !== undefined && jwk.kid !== entry.kid) {
    problems.push({ path: `${at}.jwk.kid`, message: `${quoted(jwk.kid)} differs from the key's kid "${entry.kid}"` })
  }
  if (problems.length > before) return undefined

  let imported: { verifyKey: KeyObject; signingKey: KeyObject | undefined; publicJwk: JsonWebKey | undefined }
  try {
    imported = importMaterial(jwk)
  } catch {
    problems.push({ path: `${at}.jwk`, message: `cannot be imported as ${spec.kty === 'oct' ? 'an oct' : `an ${spec.kty}`} key for ${entry.alg}` })
    return undefined
  }
  const refused = keyPolicyProblem(entry.alg, spec, jwk, imported.verifyKey)
  if (refused) {
    problems.push({ path: `${at}.jwk.${refused.member}`, message: refused.message })
    return undefined
  }
  if (imported.signingKey && spec.family !== 'hmac' && !pairMatches(entry.alg, imported.signingKey, imported.verifyKey)) {
    problems.push({ path: `${at}.jwk`, message: 'the private part does not match the public part' })
    return undefined
  }
  // Recorded only now, after every check passed: a fingerprint vouches for a valid import.
  fingerprints.set(imported.verifyKey, fingerprint)
  return { ...meta, ...imported }
}

/**
 * A value of the document named in a problem, which a terminal shows (keyset validate, a refused
 * rotate): quoted, bounded, and with every character outside printable ASCII escaped, so an ESC
 * sequence or a bidi override written into the keyset cannot rewrite what the operator reads.
 */
function quoted(value: unknown): string {
  return asciiJson(String(value).slice(0, 64))
}

/** JWK members of every key type (RFC 7517 §4). */
const COMMON_JWK_MEMBERS: ReadonlySet<string> = new Set(['kty', 'use', 'key_ops', 'alg', 'kid', 'ext'])
/** The members of each key type (RFC 7518 §6, RFC 8037 §2), private ones included. */
const KTY_MEMBERS: Readonly<Record<'oct' | 'RSA' | 'EC' | 'OKP', ReadonlySet<string>>> = {
  oct: new Set(['k']),
  RSA: new Set(['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi', 'oth']),
  EC: new Set(['crv', 'x', 'y', 'd']),
  OKP: new Set(['crv', 'x', 'd']),
}

/**
 * Fingerprint of what a key's import depends on (alg and every JWK member), keyed by the
 * KeyObject it produced. A hash, so no second copy of private material is kept; a WeakMap, so
 * a key dropped from every keyset is forgotten with it.
 */
const fingerprints = new WeakMap<KeyObject, string>()

function materialFingerprint(entry: KeyEntry): string {
  const jwk = entry.jwk as Record<string, unknown>
  const members = Object.keys(jwk)
    .sort()
    .map((name) => [name, jwk[name]])
  return crypto
    .createHash('sha256')
    .update(JSON.stringify([entry.alg, members]))
    .digest('base64url')
}

function importMaterial(jwk: JsonWebKey) {
  if (jwk.kty === 'oct') {
    const secret = crypto.createSecretKey(Buffer.from(String(jwk.k), 'base64url'))
    return { verifyKey: secret, signingKey: secret, publicJwk: undefined }
  }
  const publicJwk = publicMembers(jwk)
  // The public key is built from the public members alone, so a private part that does not
  // belong to them is caught by the pair check instead of silently deriving a new public key.
  const verifyKey = crypto.createPublicKey({ key: publicJwk, format: 'jwk' })
  const signingKey = hasSigningMaterial(jwk) ? crypto.createPrivateKey({ key: jwk, format: 'jwk' }) : undefined
  return { verifyKey, signingKey, publicJwk }
}

/** The JWK without any private member (and without `key_ops`/`ext`, which describe the private key). */
export function publicMembers(jwk: JsonWebKey): JsonWebKey {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(jwk)) {
    if (!(PRIVATE_JWK_MEMBERS as readonly string[]).includes(name) && name !== 'key_ops' && name !== 'ext') out[name] = value
  }
  return out as JsonWebKey
}

const SELF_TEST = Buffer.from('cbc-jwt key pair self-test')

function pairMatches(alg: Alg, privateKey: KeyObject, publicKey: KeyObject): boolean {
  const hash = ALG_SPECS[alg].hash
  try {
    return crypto.verify(hash, SELF_TEST, publicKey, crypto.sign(hash, SELF_TEST, privateKey))
  } catch {
    return false
  }
}
