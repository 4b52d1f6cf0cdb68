import { type INestApplicationContext, Module } from '@nestjs/common';
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
  // The guards apply to every route, but createApp() installs only those
  // whose feature is on (see accessGuards): with both off, Nest runs no guard
  // code for a request.
  providers: [ApiKeysService, ApiKeyGuard, RateLimitGuard],
  exports: [ApiKeysService, ApiKeyGuard, RateLimitGuard],
})
export class AuthModule {}

/**
 * The global guards that are on, in the order they must run: the key is
 * checked (and its id noted) before the rate limit, which counts per key.
 */
export function accessGuards(
  app: INestApplicationContext,
): (ApiKeyGuard | RateLimitGuard)[] {
  return [app.get(ApiKeyGuard), app.get(RateLimitGuard)].filter(
    (guard) => guard.enabled,
  );
}
