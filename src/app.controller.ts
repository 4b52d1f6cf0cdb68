import { Controller, Get, Inject, UseInterceptors } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { readFileSync } from 'node:fs';
import { RequestIdInterceptor } from './common/request-id.interceptor.js';
import { serverConfig } from './config/server.config.js';

const { version } = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as { version: string };

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
