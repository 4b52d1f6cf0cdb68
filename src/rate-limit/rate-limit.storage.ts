import type { ThrottlerStorage } from '@nestjs/throttler';
import type { RateLimiterService } from './rate-limiter.service.js';

/**
 * @nestjs/throttler's storage over the limiter: `increment` is one `take`
 * (one EVALSHA with Redis), its record carries everything the guard's
 * headers need, so no second round trip.
 */
export class RateLimitStorage implements ThrottlerStorage {
  constructor(private readonly limiter: RateLimiterService) {}

  async increment(key: string): ReturnType<ThrottlerStorage['increment']> {
    const taken = await this.limiter.take(key);
    return {
      totalHits: this.limiter.limit - taken.remaining,
      timeToExpire: taken.resetSeconds,
      isBlocked: !taken.allowed,
      timeToBlockExpire: taken.retryAfterSeconds,
    };
  }
}
