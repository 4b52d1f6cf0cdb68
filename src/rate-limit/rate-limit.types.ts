/** One bucket a request takes from: `cost` tokens of a `burst`-sized bucket refilled at `rps`. */
export interface Take {
  readonly key: string;
  readonly rps: number;
  readonly burst: number;
  readonly cost: number;
}

/** The limiter's answer for a request, in the units of the RateLimit-* headers. */
export interface LimitResult {
  allowed: boolean;
  /** The bucket the answer is about: the one that refused, else the one with least left. */
  index: number;
  /** Tokens left in that bucket. */
  remaining: number;
  /** Seconds until that bucket is full again (RateLimit-Reset). */
  resetSeconds: number;
  /** When refused: seconds until the request would pass (Retry-After); else 0. */
  retryAfterSeconds: number;
}
