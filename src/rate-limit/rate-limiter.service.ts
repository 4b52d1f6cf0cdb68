import {
  Inject,
  Injectable,
  ServiceUnavailableException,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { securityConfig } from '../config/security.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { type RedisClient, RedisService } from '../redis/redis.service.js';
import type { LimitResult } from './rate-limit.types.js';
import { defineGcra, takeGcra } from './redis-gcra.js';
import { TokenBuckets } from './token-bucket.js';

const LET_THROUGH: LimitResult = {
  allowed: true,
  remaining: 0,
  resetSeconds: 0,
  retryAfterSeconds: 0,
};

/**
 * RATE_LIMIT_RPS / RATE_LIMIT_BURST per client key: in memory per pod, or,
 * with Redis configured, one bucket shared by every replica (one EVALSHA per
 * request). When Redis cannot answer within REDIS_TIMEOUT_MS the request is
 * let through (RATE_LIMIT_ON_REDIS_ERROR=allow, counted) or refused with 503.
 */
@Injectable()
export class RateLimiterService {
  readonly enabled: boolean;
  /** Requests at once per client (the bucket size, RateLimit-Limit). */
  readonly limit: number;
  private readonly rps: number;
  private readonly memory: TokenBuckets;
  private readonly redis: RedisClient | null;
  private readonly keyPrefix: string;
  private readonly denyOnError: boolean;

  constructor(
    @Inject(securityConfig.KEY) config: ConfigType<typeof securityConfig>,
    private readonly redisService: RedisService,
    private readonly metrics: MetricsService,
  ) {
    this.enabled = config.rateLimitRps > 0;
    this.rps = Math.max(config.rateLimitRps, 1);
    this.limit = Math.max(config.rateLimitBurst || this.rps, 1);
    this.memory = new TokenBuckets(this.rps, this.limit);
    this.redis = this.enabled ? redisService.client : null;
    this.keyPrefix = `${redisService.keyPrefix}rl:`;
    this.denyOnError = config.rateLimitOnRedisError === 'deny';
    if (this.redis) defineGcra(this.redis);
  }

  /** Takes one request from `key`'s bucket. */
  take(key: string): Promise<LimitResult> {
    if (this.redis === null) return Promise.resolve(this.memory.take(key));
    return takeGcra(
      this.redis,
      this.keyPrefix + key,
      this.rps,
      this.limit,
    ).catch((err: unknown) => this.onRedisError(err));
  }

  private onRedisError(err: unknown): LimitResult {
    this.redisService.failed('rate_limit', err);
    if (this.denyOnError) {
      throw new ServiceUnavailableException(
        'rate limiter unavailable (shared state not reachable)',
      );
    }
    this.metrics.rateLimitRedisFallback.inc();
    return LET_THROUGH;
  }
}
