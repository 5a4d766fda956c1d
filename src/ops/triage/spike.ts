/**
 * When one client's rejections for one reason began to spike: rejections are counted per
 * minute, a spike is a run of minutes with no silence longer than the gap, and its start is
 * the first rejection of the busiest run (of equal ones, the latest). A stray rejection long
 * before the spike forms a run of its own and never moves the start back.
 *
 * Lines from several replicas arrive in any order (`kubectl logs` prints one pod after the
 * other), so times are binned rather than streamed. Memory is bounded: at most `maxBuckets`
 * minutes per group; past that the oldest minute is dropped (the spike being looked for is
 * the recent one).
 */
export class SpikeHistogram {
  /** minute index → rejections in it and the earliest one (ms). */
  private readonly buckets = new Map<number, { count: number; first: number }>()

  constructor(
    private readonly bucketMs = 60_000,
    private readonly maxBuckets = 1440,
  ) {}

  add(timeMs: number): void {
    const index = Math.floor(timeMs / this.bucketMs)
    const bucket = this.buckets.get(index)
    if (bucket) {
      bucket.count++
      if (timeMs < bucket.first) bucket.first = timeMs
      return
    }
    if (this.buckets.size >= this.maxBuckets) {
      const oldest = Math.min(...this.buckets.keys())
      if (index < oldest) return
      this.buckets.delete(oldest)
    }
    this.buckets.set(index, { count: 1, first: timeMs })
  }

  /** The busiest run's first rejection and its size; undefined when nothing was added. */
  spike(gapMs: number): { start: number; count: number } | undefined {
    const minutes = [...this.buckets.keys()].sort((a, b) => a - b)
    const gap = Math.max(1, Math.ceil(gapMs / this.bucketMs))
    let best: { start: number; count: number } | undefined
    let run: { start: number; count: number } | undefined
    let previous: number | undefined
    for (const minute of minutes) {
      const bucket = this.buckets.get(minute)!
      if (run === undefined || previous === undefined || minute - previous > gap) run = { start: bucket.first, count: 0 }
      run.count += bucket.count
      previous = minute
      if (best === undefined || run.count >= best.count) best = { start: run.start, count: run.count }
    }
    return best
  }
}

/** A silence longer than this ends a spike. @default 5 min (the alert's rate window) */
export const DEFAULT_SPIKE_GAP_MS = 5 * 60_000
