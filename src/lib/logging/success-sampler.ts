/** Pairs (kid, client id) remembered per window; past this, only the rate samples. */
const MAX_PAIRS = 10_000
const WINDOW_MS = 3600_000

export interface SuccessSamplerOptions {
  /** Fraction of accepted tokens logged at random, 0 to 1 (`CBC_JWT_SUCCESS_LOG_SAMPLE`). @default 0.01 */
  rate: number
  /** Clock in ms. @default Date.now */
  now?: () => number
  /** Uniform [0, 1). @default Math.random */
  random?: () => number
}

/** Why an accepted token was logged: the first use of its (kid, client id) pair this hour, or the random sample. */
export type SampleReason = 'first_use' | 'sample'

/**
 * Decides which accepted tokens get an `auth_accepted` log line, so that the use of a leaked
 * key can be scoped (which clients, from where, since when) without a line per request: the
 * first acceptance of each (kid, client id) pair in each hour — so no client of a key goes
 * unseen, however quiet — plus a random `rate` of the rest. Memory is bounded (10 000 pairs a
 * window). With rate 0, only first uses are logged; `enabled: false` logs nothing.
 */
export function createSuccessSampler(options: SuccessSamplerOptions): (kid: string, clientId: string | undefined) => SampleReason | undefined {
  const { rate } = options
  if (!(rate >= 0 && rate <= 1)) throw new RangeError('rate must be between 0 and 1')
  const now = options.now ?? Date.now
  const random = options.random ?? Math.random
  let windowStart = now()
  // kid → client ids seen this window. Two lookups rather than one on a joined string: the
  // strings come from cached claims, so their hashes are already computed and nothing is built
  // per request.
  let seen = new Map<string, Set<string | undefined>>()
  let pairs = 0
  return (kid, clientId) => {
    const t = now()
    // A clock stepped back (NTP, a resumed VM) starts a window too: else the hour in force
    // would last until the clock caught up, and a pair's first use in it would go unlogged.
    if (t - windowStart >= WINDOW_MS || t < windowStart) {
      windowStart = t
      seen = new Map()
      pairs = 0
    }
    let clients = seen.get(kid)
    if (clients?.has(clientId) !== true && pairs < MAX_PAIRS) {
      if (clients === undefined) {
        clients = new Set()
        seen.set(kid, clients)
      }
      clients.add(clientId)
      pairs++
      return 'first_use'
    }
    return rate > 0 && random() < rate ? 'sample' : undefined
  }
}
