import {
  CanActivate,
  ExecutionContext,
  Inject,
  Injectable,
  NotFoundException,
  UnauthorizedException,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { securityConfig } from '../config/security.config.js';
import { METRICS_CHALLENGE, MetricsAccess } from './metrics-access.js';

/**
 * `/metrics` on the main port: absent (404) when METRICS_PORT serves it
 * elsewhere; behind METRICS_API_KEY when that is set; open otherwise.
 */
@Injectable()
export class MetricsAccessGuard implements CanActivate {
  private readonly movedAway: boolean;
  private readonly access: MetricsAccess;

  constructor(
    @Inject(securityConfig.KEY) config: ConfigType<typeof securityConfig>,
  ) {
    this.movedAway = config.metricsPort !== undefined;
    this.access = new MetricsAccess(config.metricsApiKey);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    if (this.movedAway) {
      throw new NotFoundException(`Cannot ${request.method} /metrics`);
    }
    if (this.access.allows(request.headers)) return true;
    http
      .getResponse<FastifyReply>()
      .header('www-authenticate', METRICS_CHALLENGE);
    throw new UnauthorizedException('a metrics key is required');
  }
}
