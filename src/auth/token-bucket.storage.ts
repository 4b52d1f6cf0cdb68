import type { ThrottlerStorage } from '@nestjs/throttler';

interface Bucket {
  tokens: number;
  at: number;
}

/** Buckets idle long enough to be full again are dropped this often. */
const SWEEP_EVERY_MS = 10_000;

/**
 * A token bucket per tracker for @nestjs/throttler: `capacity` requests at
 * once (the burst), refilled at `rps` per second. Its record maps onto the
 * guard's headers: remaining = tokens left, reset = seconds until full,
 * retry-after = seconds until the next token.
 */
export class TokenBucketStorage implements ThrottlerStorage {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep = Date.now();

  constructor(
    private readonly rps: number,
    readonly capacity: number,
  ) {}

  increment(key: string) {
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
    const isBlocked = bucket.tokens < 1;
    if (!isBlocked) bucket.tokens -= 1;
    return Promise.resolve({
      totalHits: this.capacity - Math.floor(bucket.tokens),
      timeToExpire: Math.ceil((this.capacity - bucket.tokens) / this.rps),
      isBlocked,
      timeToBlockExpire: isBlocked
        ? Math.max(1, Math.ceil((1 - bucket.tokens) / this.rps))
        : 0,
    });
  }

  /** Number of trackers with a bucket (for tests and memory bounds). */
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
