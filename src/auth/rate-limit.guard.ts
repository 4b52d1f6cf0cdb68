import {
  ExecutionContext,
  HttpException,
  HttpStatus,
  Inject,
  Injectable,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  type ThrottlerLimitDetail,
  type ThrottlerModuleOptions,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { FastifyReply, FastifyRequest } from 'fastify';
import '../common/request-context.js';
import { securityConfig } from '../config/security.config.js';
import { IS_PUBLIC } from './public.decorator.js';

/**
 * @nestjs/throttler's guard, per API key (its short id) when keys are on,
 * else per client IP, with `RateLimit-Limit/Remaining/Reset` headers and a
 * 429 + `Retry-After` through the gateway's error filter. `@Public()` routes
 * are never limited. Installed only when on (see accessGuards).
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  /** RATE_LIMIT_RPS > 0. */
  readonly enabled: boolean;

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    @Inject(securityConfig.KEY) config: ConfigType<typeof securityConfig>,
  ) {
    super(options, storage, reflector);
    this.headerPrefix = 'RateLimit';
    this.enabled = config.rateLimitRps > 0;
  }

  override canActivate(context: ExecutionContext): Promise<boolean> {
    const allowed = super.canActivate(context);
    const trace = context.switchToHttp().getRequest<FastifyRequest>().raw
      .gateway?.trace;
    if (!trace) return allowed;
    return allowed.then((ok) => {
      const reply = context.switchToHttp().getResponse<FastifyReply>();
      trace.event('gateway.rate_limit', {
        'gateway.rate_limit.decision': 'allowed',
        'gateway.rate_limit.remaining': Number(
          reply.getHeader('ratelimit-remaining') ?? -1,
        ),
      });
      return ok;
    });
  }

  protected override shouldSkip(context: ExecutionContext): Promise<boolean> {
    return Promise.resolve(
      this.reflector.getAllAndOverride<boolean | undefined>(IS_PUBLIC, [
        context.getHandler(),
        context.getClass(),
      ]) === true,
    );
  }

  protected override getTracker(request: FastifyRequest): Promise<string> {
    const keyId = request.raw.gateway?.keyId;
    return Promise.resolve(
      keyId === undefined ? `ip:${request.ip}` : `key:${keyId}`,
    );
  }

  /** One bucket per tracker across all routes (the default is per handler). */
  protected override generateKey(
    _context: ExecutionContext,
    tracker: string,
  ): string {
    return tracker;
  }

  protected override throwThrottlingException(
    context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const reply = context.switchToHttp().getResponse<FastifyReply>();
    context
      .switchToHttp()
      .getRequest<FastifyRequest>()
      .raw.gateway?.trace?.event('gateway.rate_limit', {
        'gateway.rate_limit.decision': 'rejected',
        'gateway.rate_limit.limit': detail.limit,
        'gateway.rate_limit.retry_after_s': detail.timeToBlockExpire,
      });
    reply.headers({
      'ratelimit-limit': detail.limit,
      'ratelimit-remaining': 0,
      'ratelimit-reset': detail.timeToBlockExpire,
    });
    throw new HttpException(
      `rate limit exceeded, retry in ${detail.timeToBlockExpire} s`,
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}
