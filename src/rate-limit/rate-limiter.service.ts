import {
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  ServiceUnavailableException,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestState } from '../common/request-state.js';
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
 * RATE_LIMIT_RPS / RATE_LIMIT_BURST per client: per API key (its short id)
 * when keys are on, else per client IP; in memory per pod, or, with Redis
 * configured, one bucket shared by every replica (one EVALSHA per request).
 * When Redis cannot answer within REDIS_TIMEOUT_MS the request is let
 * through (RATE_LIMIT_ON_REDIS_ERROR=allow, counted) or refused with 503.
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

  /**
   * The rate-limit check of one request (after the API key check, which
   * names the client): `RateLimit-Limit/Remaining/Reset` on the answer, or
   * 429 with `Retry-After` when the client's bucket is empty.
   */
  async check(
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
  ): Promise<void> {
    const taken = await this.take(
      state.keyId === undefined ? `ip:${request.ip}` : `key:${state.keyId}`,
    );
    if (!taken.allowed) {
      state.trace?.event('gateway.rate_limit', {
        'gateway.rate_limit.decision': 'rejected',
        'gateway.rate_limit.limit': this.limit,
        'gateway.rate_limit.retry_after_s': taken.retryAfterSeconds,
      });
      reply.headers({
        'retry-after': taken.retryAfterSeconds,
        'ratelimit-limit': this.limit,
        'ratelimit-remaining': 0,
        'ratelimit-reset': taken.retryAfterSeconds,
      });
      throw new HttpException(
        `rate limit exceeded, retry in ${taken.retryAfterSeconds} s`,
        HttpStatus.TOO_MANY_REQUESTS,
      );
    }
    const remaining = Math.max(0, taken.remaining);
    reply.headers({
      'ratelimit-limit': this.limit,
      'ratelimit-remaining': remaining,
      'ratelimit-reset': taken.resetSeconds,
    });
    state.trace?.event('gateway.rate_limit', {
      'gateway.rate_limit.decision': 'allowed',
      'gateway.rate_limit.remaining': remaining,
    });
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
