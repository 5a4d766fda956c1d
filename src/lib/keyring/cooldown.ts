/**
 * At most one go per `ms`: how the keyring, and each trusted issuer's keys, bound the re-reads
 * that tokens with an unknown `kid` can cause (forged kids cost at most one read per period).
 */
export interface Cooldown {
  /** True at most once per period, and records it: whether a read may go now. */
  due(): boolean
}

export function createCooldown(ms: number, now: () => number): Cooldown {
  let last = -Infinity
  return {
    due() {
      const t = now()
      // A clock stepped back (NTP, a resumed VM) puts the last go in the future: that is not
      // "within the period", or no read would go until the clock caught up (an hour for an hour).
      if (t >= last && t - last < ms) return false
      last = t
      return true
    },
  }
}
