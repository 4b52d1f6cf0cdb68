import type { LimitResult, Take } from './rate-limit.types.js';

interface Bucket {
  tokens: number;
  at: number;
  /** Idle this long, the bucket is full again: it can be forgotten. */
  fullAfterMs: number;
}

/** Buckets idle long enough to be full again are dropped this often. */
const SWEEP_EVERY_MS = 10_000;

/**
 * In-memory token buckets for one pod, one per key, each with the size and
 * rate of the take that uses it. A request takes from one or more buckets
 * at once: from all, or (when one has too few tokens) from none.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = Date.now();

  take(takes: readonly Take[]): LimitResult {
    const now = Date.now();
    this.sweep(now);
    const buckets = takes.map((take) => this.refilled(take, now));
    let best: LimitResult | undefined;
    for (let i = 0; i < takes.length; i++) {
      const { rps, burst, cost } = takes[i];
      const tokens = buckets[i].tokens;
      if (tokens < cost)
        return {
          allowed: false,
          index: i,
          remaining: Math.floor(tokens),
          resetSeconds: Math.ceil((burst - tokens) / rps),
          retryAfterSeconds: Math.max(1, Math.ceil((cost - tokens) / rps)),
        };
      const left = tokens - cost;
      if (best === undefined || left < best.remaining)
        best = {
          allowed: true,
          index: i,
          remaining: Math.floor(left),
          resetSeconds: Math.ceil((burst - left) / rps),
          retryAfterSeconds: 0,
        };
    }
    for (let i = 0; i < takes.length; i++) buckets[i].tokens -= takes[i].cost;
    return best!;
  }

  /** Number of keys with a bucket (for tests and memory bounds). */
  get size(): number {
    return this.buckets.size;
  }

  private refilled({ key, rps, burst }: Take, now: number): Bucket {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: burst, at: now, fullAfterMs: (burst / rps) * 1000 };
      this.buckets.set(key, bucket);
      return bucket;
    }
    bucket.tokens = Math.min(
      burst,
      bucket.tokens + ((now - bucket.at) * rps) / 1000,
    );
    bucket.at = now;
    bucket.fullAfterMs = (burst / rps) * 1000;
    return bucket;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    for (const [key, bucket] of this.buckets) {
      if (now - bucket.at >= bucket.fullAfterMs) this.buckets.delete(key);
    }
  }
}
