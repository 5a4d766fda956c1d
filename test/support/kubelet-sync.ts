import { KubeletVolume } from './kubelet-volume.js'

/**
 * The kubelet's side of a secret volume: it notices that the secret changed and, `lagMs`
 * later (real nodes differ: 5 s here, 60–90 s there), publishes it into the pod's volume the
 * way AtomicWriter does. `pause()` holds the node back (a kubelet that has not synced yet)
 * until `resume()`.
 */
export class KubeletSync {
  readonly volume: KubeletVolume
  private published: string | undefined
  private pending: { text: string; since: number } | undefined
  private paused = false
  private readonly timer: NodeJS.Timeout

  constructor(
    dir: string,
    private readonly source: () => string | undefined,
    /** How long after it noticed a change the node publishes it; a test may change it between phases. */
    public lagMs: number,
  ) {
    this.volume = new KubeletVolume(dir)
    this.sync(true)
    this.timer = setInterval(() => this.sync(false), 50)
    this.timer.unref()
  }

  pause(): void {
    this.paused = true
  }

  resume(): void {
    this.paused = false
    this.sync(false)
  }

  /** True when the volume holds what the source holds now. */
  inSync(): boolean {
    return this.published === this.source()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  private sync(initial: boolean): void {
    const text = this.source()
    if (text === undefined || text === this.published) return
    if (this.pending?.text !== text) this.pending = { text, since: Date.now() }
    if (!initial && (this.paused || Date.now() - this.pending.since < this.lagMs)) return
    this.volume.writeKeyset(text)
    this.published = text
    this.pending = undefined
  }
}
