import { Module } from '@nestjs/common';
import { TenantsModule } from '../tenants/tenants.module.js';
import { RateLimitGuard } from './rate-limit.guard.js';
import { RateLimiterService } from './rate-limiter.service.js';

@Module({
  imports: [TenantsModule],
  providers: [RateLimiterService, RateLimitGuard],
  exports: [RateLimiterService, RateLimitGuard],
})
export class RateLimitModule {}
