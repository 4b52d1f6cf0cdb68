import { Controller, Get, Inject, UseInterceptors } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { RequestIdInterceptor } from './common/request-id.interceptor.js';
import { serverConfig } from './config/server.config.js';
import { version } from './version.js';

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
