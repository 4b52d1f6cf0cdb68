import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { RateLimitModule } from '../rate-limit/rate-limit.module.js';
import { RateLimitStorage } from '../rate-limit/rate-limit.storage.js';
import { RateLimiterService } from '../rate-limit/rate-limiter.service.js';
import { ApiKeyGuard } from './api-key.guard.js';
import { ApiKeysService } from './api-keys.service.js';
import { RateLimitGuard } from './rate-limit.guard.js';

@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      imports: [RateLimitModule],
      inject: [RateLimiterService],
      useFactory: (limiter: RateLimiterService) => ({
        throttlers: [{ limit: limiter.limit, ttl: 1000 }],
        storage: new RateLimitStorage(limiter),
      }),
    }),
  ],
  providers: [
    ApiKeysService,
    // Order matters: the key is checked (and its id noted) before the rate limit.
    { provide: APP_GUARD, useClass: ApiKeyGuard },
    { provide: APP_GUARD, useClass: RateLimitGuard },
  ],
  exports: [ApiKeysService],
})
export class AuthModule {}
