/** One request's answer from the limiter, in the units of the RateLimit-* headers. */
export interface LimitResult {
  allowed: boolean;
  /** Requests the client may still make at once. */
  remaining: number;
  /** Seconds until the bucket is full again (RateLimit-Reset). */
  resetSeconds: number;
  /** When refused: seconds until the next request would pass (Retry-After); else 0. */
  retryAfterSeconds: number;
}
