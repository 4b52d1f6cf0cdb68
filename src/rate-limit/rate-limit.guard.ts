import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { requestState } from '../common/request-state.js';
import { RateLimiterService } from './rate-limiter.service.js';

/**
 * The rate limit on the gateway's own routes that are not open to all
 * (`GET /`), after AuthGuard; the prediction path runs the same check as
 * a stage.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(private readonly limiter: RateLimiterService) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (!this.limiter.enabled) return true;
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    await this.limiter.check(
      request,
      http.getResponse<FastifyReply>(),
      requestState(request),
    );
    return true;
  }
}
