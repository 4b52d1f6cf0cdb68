import { Module } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { securityConfig } from '../config/security.config.js';
import { ApiKeyGuard } from './api-key.guard.js';
import { ApiKeysService } from './api-keys.service.js';
import { RateLimitGuard } from './rate-limit.guard.js';
import { TokenBucketStorage } from './token-bucket.storage.js';

@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [securityConfig.KEY],
      useFactory: (config: ConfigType<typeof securityConfig>) => {
        const rps = Math.max(config.rateLimitRps, 1);
        const capacity = Math.max(config.rateLimitBurst || rps, 1);
        return {
          throttlers: [{ limit: capacity, ttl: 1000 }],
          storage: new TokenBucketStorage(rps, capacity),
        };
      },
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
