import {
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
  ServiceUnavailableException,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { parsePointer, type Pointer } from '../common/json-pointer.js';
import type { RequestState } from '../common/request-state.js';
import { batchingConfig } from '../config/batching.config.js';
import { securityConfig } from '../config/security.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { type RedisClient, RedisService } from '../redis/redis.service.js';
import { TenantsService } from '../tenants/tenants.service.js';
import type { LimitResult, Take } from './rate-limit.types.js';
import { defineGcra, takeGcra } from './redis-gcra.js';
import { requestItems } from './request-items.js';
import { TokenBuckets } from './token-bucket.js';

const LET_THROUGH: LimitResult = {
  allowed: true,
  index: -1,
  remaining: 0,
  resetSeconds: 0,
  retryAfterSeconds: 0,
};

interface GlobalLimit {
  readonly rps: number;
  readonly burst: number;
  readonly inItems: boolean;
}

/**
 * Two limits, each a token bucket: RATE_LIMIT_RPS / RATE_LIMIT_BURST per
 * client (per API key or JWT subject, else per client IP), in requests or
 * items (RATE_LIMIT_UNIT); and, with TENANTS_FILE, each tenant's quota in
 * items (one bucket per listed tenant, one per client for `default`). A
 * `/batch_predict` costs its texts. In memory per pod, or, with Redis, the
 * buckets every replica shares (one script call per request, both buckets
 * at once). When Redis cannot answer within REDIS_TIMEOUT_MS the request
 * is let through (RATE_LIMIT_ON_REDIS_ERROR=allow, counted) or refused.
 */
@Injectable()
export class RateLimiterService {
  readonly enabled: boolean;
  private readonly global: GlobalLimit | undefined;
  private readonly memory = new TokenBuckets();
  private readonly redis: RedisClient | null;
  private readonly keyPrefix: string;
  private readonly denyOnError: boolean;
  /** Where a /batch_predict body holds its texts (BATCH_ITEMS with batching on). */
  private readonly itemsAt: Pointer;

  constructor(
    @Inject(securityConfig.KEY) config: ConfigType<typeof securityConfig>,
    @Inject(batchingConfig.KEY) batching: ConfigType<typeof batchingConfig>,
    private readonly redisService: RedisService,
    private readonly metrics: MetricsService,
    private readonly tenants: TenantsService,
  ) {
    if (config.rateLimitRps > 0)
      this.global = {
        rps: config.rateLimitRps,
        burst: Math.max(config.rateLimitBurst || config.rateLimitRps, 1),
        inItems: config.rateLimitUnit === 'items',
      };
    this.enabled = this.global !== undefined || tenants.enabled;
    this.redis = this.enabled ? redisService.client : null;
    this.keyPrefix = `${redisService.keyPrefix}rl:`;
    this.denyOnError = config.rateLimitOnRedisError === 'deny';
    this.itemsAt = parsePointer(
      batching.maxSize > 0 ? batching.endpoint.items : '/request/texts',
    );
    if (this.redis) defineGcra(this.redis);
  }

  /**
   * The rate-limit check of one request (after the credentials check, which
   * names the client and its tenant): `RateLimit-Limit/Remaining/Reset` on
   * the answer, or 429 with `Retry-After` when a bucket has too few tokens.
   * `endpoint`: the backend route (`/batch_predict` costs its texts).
   */
  async check(
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
    endpoint = '',
  ): Promise<void> {
    const takes = this.takesOf(request, state, endpoint);
    if (takes.length === 0) return;
    const tooLarge = takes.find((take) => take.cost > take.burst);
    if (tooLarge) {
      reply.headers(limitHeaders(tooLarge.burst, 0, 0));
      throw new HttpException(
        `this request's ${tooLarge.cost} items are more than the ${tooLarge.burst} allowed at once: split it`,
        HttpStatus.TOO_MANY_REQUESTS,
      );
    }
    const taken = await this.take(takes);
    if (taken.index < 0) return;
    const limit = takes[taken.index].burst;
    if (!taken.allowed) {
      state.trace?.event('gateway.rate_limit', {
        'gateway.rate_limit.decision': 'rejected',
        'gateway.rate_limit.limit': limit,
        'gateway.rate_limit.retry_after_s': taken.retryAfterSeconds,
      });
      reply.headers({
        'retry-after': taken.retryAfterSeconds,
        ...limitHeaders(limit, 0, taken.retryAfterSeconds),
      });
      throw new HttpException(
        `rate limit exceeded, retry in ${taken.retryAfterSeconds} s`,
        HttpStatus.TOO_MANY_REQUESTS,
      );
    }
    const remaining = Math.max(0, taken.remaining);
    reply.headers(limitHeaders(limit, remaining, taken.resetSeconds));
    state.trace?.event('gateway.rate_limit', {
      'gateway.rate_limit.decision': 'allowed',
      'gateway.rate_limit.remaining': remaining,
    });
  }

  /**
   * The buckets a request takes from. Without tenants: the client's, named
   * as before. With tenants, every key of a request carries one Redis Cluster
   * hash tag (the listed tenant's name, else the client) so one script call
   * can take from both.
   */
  private takesOf(
    request: FastifyRequest,
    state: RequestState,
    endpoint: string,
  ): Take[] {
    const client =
      state.keyId === undefined ? `ip:${request.ip}` : `key:${state.keyId}`;
    let items = 0;
    const itemsOf = () =>
      (items ||= requestItems(request, endpoint, this.itemsAt));
    const global = this.global;
    const globalTake = (key: string): Take => ({
      key,
      rps: global!.rps,
      burst: global!.burst,
      cost: global!.inItems ? itemsOf() : 1,
    });
    if (!this.tenants.enabled) return global ? [globalTake(client)] : [];
    const tenant =
      state.tenant === undefined
        ? this.tenants.default
        : this.tenants.named(state.tenant);
    const tag = tenant.listed ? `{t:${tenant.name}}` : `{c:${client}}`;
    const takes: Take[] = [];
    if (tenant.quota)
      takes.push({ key: tag, ...tenant.quota, cost: itemsOf() });
    if (global) takes.push(globalTake(tag + client));
    return takes;
  }

  private take(takes: readonly Take[]): Promise<LimitResult> {
    if (this.redis === null) return Promise.resolve(this.memory.take(takes));
    return takeGcra(this.redis, this.keyPrefix, takes).catch((err: unknown) =>
      this.onRedisError(err),
    );
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

function limitHeaders(limit: number, remaining: number, reset: number) {
  return {
    'ratelimit-limit': limit,
    'ratelimit-remaining': remaining,
    'ratelimit-reset': reset,
  };
}
