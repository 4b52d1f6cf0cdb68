import {
  Controller,
  Get,
  Inject,
  UseGuards,
  UseInterceptors,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { AuthGuard } from './auth/auth.guard.js';
import { RequestIdInterceptor } from './common/request-id.interceptor.js';
import { serverConfig } from './config/server.config.js';
import { RateLimitGuard } from './rate-limit/rate-limit.guard.js';
import { version } from './version.js';

/** `GET /`: what the gateway is; behind the credentials check and the rate limit when they are on. */
@UseGuards(AuthGuard, RateLimitGuard)
@UseInterceptors(RequestIdInterceptor)
@Controller()
export class AppController {
  constructor(
    @Inject(serverConfig.KEY)
    private readonly config: ConfigType<typeof serverConfig>,
  ) {}

  @Get()
  index() {
    return {
      service: 'api-gateway',
      version,
      environment: this.config.environment,
      endpoints: {
        health: 'GET /health',
        liveness: 'GET /health/live',
        readiness: 'GET /health/ready',
        predict: 'POST /predict',
        batch_predict: 'POST /batch_predict',
        metrics: 'GET /metrics',
      },
    };
  }
}
