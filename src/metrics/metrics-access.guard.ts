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
import { keyDigest, matchKey, presentedKey } from '../auth/api-key.js';
import { securityConfig } from '../config/security.config.js';

/**
 * `/metrics` on the main port: absent (404) when METRICS_PORT serves it
 * elsewhere; behind METRICS_API_KEY when that is set; open otherwise.
 */
@Injectable()
export class MetricsAccessGuard implements CanActivate {
  private readonly movedAway: boolean;
  private readonly keys: { digest: Buffer }[];

  constructor(
    @Inject(securityConfig.KEY) config: ConfigType<typeof securityConfig>,
  ) {
    this.movedAway = config.metricsPort !== undefined;
    this.keys =
      config.metricsApiKey === undefined
        ? []
        : [{ digest: keyDigest(config.metricsApiKey) }];
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    if (this.movedAway) {
      throw new NotFoundException(`Cannot ${request.method} /metrics`);
    }
    if (this.keys.length === 0) return true;
    const presented = presentedKey(request.headers);
    if (presented !== undefined && matchKey(presented, this.keys)) return true;
    http
      .getResponse<FastifyReply>()
      .header('www-authenticate', 'Bearer realm="metrics"');
    throw new UnauthorizedException('a metrics key is required');
  }
}
