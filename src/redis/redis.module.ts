import { Global, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { RedisHealthIndicator } from './redis.indicator.js';
import type { ConfigType } from '@nestjs/config';
import { redisConfig } from '../config/redis.config.js';
import { IOREDIS, REDIS_CLIENT } from './redis.constants.js';
import { RedisService } from './redis.service.js';

/** The pod's shared Redis connection (or null without Redis configured) for every feature. */
@Global()
@Module({
  imports: [TerminusModule],
  providers: [
    {
      provide: IOREDIS,
      inject: [redisConfig.KEY],
      useFactory: (config: ConfigType<typeof redisConfig>) =>
        config.topology ? import('ioredis') : null,
    },
    RedisService,
    RedisHealthIndicator,
    {
      provide: REDIS_CLIENT,
      inject: [RedisService],
      useFactory: (redis: RedisService) => redis.client,
    },
  ],
  exports: [RedisService, RedisHealthIndicator, REDIS_CLIENT],
})
export class RedisModule {}
