import { Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { APP_FILTER } from '@nestjs/core';
import { AppController } from './app.controller.js';
import { AuthModule } from './auth/auth.module.js';
import { HttpExceptionFilter } from './common/http-exception.filter.js';
import { backendConfig } from './config/backend.config.js';
import { batchingConfig } from './config/batching.config.js';
import { cacheConfig } from './config/cache.config.js';
import { captureConfig } from './config/capture.config.js';
import { jwtConfig } from './config/jwt.config.js';
import { loggingConfig } from './config/logging.config.js';
import { modelsConfig } from './config/models.config.js';
import { redisConfig } from './config/redis.config.js';
import { securityConfig } from './config/security.config.js';
import { serverConfig } from './config/server.config.js';
import { tracingConfig } from './config/tracing.config.js';
import { HealthModule } from './health/health.module.js';
import { LoggingModule } from './logging/logging.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { PredictModule } from './predict/predict.module.js';
import { RateLimitModule } from './rate-limit/rate-limit.module.js';
import { RedisModule } from './redis/redis.module.js';
import { TracingModule } from './tracing/tracing.module.js';

@Module({
  imports: [
    ConfigModule.forRoot({
      isGlobal: true,
      ignoreEnvFile: true,
      load: [
        serverConfig,
        backendConfig,
        loggingConfig,
        securityConfig,
        jwtConfig,
        redisConfig,
        cacheConfig,
        tracingConfig,
        modelsConfig,
        batchingConfig,
        captureConfig,
      ],
    }),
    LoggingModule,
    TracingModule,
    MetricsModule,
    RedisModule,
    AuthModule,
    RateLimitModule,
    PredictModule,
    HealthModule,
  ],
  controllers: [AppController],
  providers: [{ provide: APP_FILTER, useClass: HttpExceptionFilter }],
})
export class AppModule {}
