import type { CbcJwt } from './cbc-jwt.js'
import { isClosed } from './metrics-placement.js'

/**
 * The instances the adapters build, one per set of equal options. The documented Express
 * pattern puts `cbcJwt()` on each route; each call building its own instance would mean one
 * keyring, one watch and one set of metrics per route, and on one registry the last set hides
 * the others' counts. Calls with equal options get the same instance instead: one keyring, and
 * every route's rejections counted together.
 */
interface Shared {
  cbc: CbcJwt
  holders: number
}

const instances = new Map<string, Shared>()

/**
 * The instance for `options`: the open one already built from equal options, or a new one from
 * `build`. `release()` hands it back; the last holder's release closes it (an adapter that
 * closes with its framework, as the Fastify plugin does). Options are equal when their plain
 * data is (numbers, strings, arrays, plain objects such as `env`, compared by value) and every
 * other value is the same object (a logger, a backend, a registry, a function).
 */
export function sharedInstance(options: object, build: () => CbcJwt): { cbc: CbcJwt; release: () => Promise<void> } {
  const key = fingerprint(options)
  let entry = instances.get(key)
  if (entry === undefined || isClosed(entry.cbc)) {
    entry = { cbc: build(), holders: 0 }
    instances.set(key, entry)
  }
  const held = entry
  held.holders++
  let released = false
  return {
    cbc: held.cbc,
    release: async () => {
      if (released) return
      released = true
      held.holders--
      if (held.holders > 0) return
      if (instances.get(key) === held) instances.delete(key)
      await held.cbc.close()
    },
  }
}

const identities = new WeakMap<object, number>()
let nextIdentity = 0

function identity(value: object): string {
  let id = identities.get(value)
  if (id === undefined) {
    id = ++nextIdentity
    identities.set(value, id)
  }
  return `\u0000object#${id}`
}

function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value)
  return Array.isArray(value) || proto === Object.prototype || proto === null
}

/** The options as a string: plain data by value (object keys sorted), anything else by identity. */
function fingerprint(options: object): string {
  try {
    return byValue(options)
  } catch {
    // Plain data that cannot be written out (a cycle): never equal to other options.
    return identity({})
  }
}

function byValue(options: object): string {
  return JSON.stringify(options, (_key, value: unknown) => {
    if (typeof value === 'function') return identity(value)
    if (typeof value !== 'object' || value === null) return value
    if (!isPlain(value)) return identity(value)
    if (Array.isArray(value)) return value
    const sorted: Record<string, unknown> = {}
    for (const name of Object.keys(value).sort()) sorted[name] = (value as Record<string, unknown>)[name]
    return sorted
  })
}
