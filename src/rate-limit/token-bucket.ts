import type { LimitResult } from './rate-limit.types.js';

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets idle long enough to be full again are dropped this often. */
const SWEEP_EVERY_MS = 10_000;

/**
 * In-memory token buckets, one per key, for one pod: `capacity` requests at
 * once (the burst), refilled at `rps` per second.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = Date.now();

  constructor(
    private readonly rps: number,
    readonly capacity: number,
  ) {}

  take(key: string): LimitResult {
    const now = Date.now();
    this.sweep(now);
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.capacity, at: now };
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(
        this.capacity,
        bucket.tokens + ((now - bucket.at) * this.rps) / 1000,
      );
      bucket.at = now;
    }
    const allowed = bucket.tokens >= 1;
    if (allowed) bucket.tokens -= 1;
    return {
      allowed,
      remaining: Math.floor(bucket.tokens),
      resetSeconds: Math.ceil((this.capacity - bucket.tokens) / this.rps),
      retryAfterSeconds: allowed
        ? 0
        : Math.max(1, Math.ceil((1 - bucket.tokens) / this.rps)),
    };
  }

  /** Number of keys with a bucket (for tests and memory bounds). */
  get size(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    if (now - this.lastSweep < SWEEP_EVERY_MS) return;
    this.lastSweep = now;
    const fullAfterMs = (this.capacity / this.rps) * 1000;
    for (const [key, bucket] of this.buckets) {
      if (now - bucket.at >= fullAfterMs) this.buckets.delete(key);
    }
  }
}
