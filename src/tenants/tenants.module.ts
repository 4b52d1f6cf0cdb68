import { Module } from '@nestjs/common';
import { TenantsService } from './tenants.service.js';

/** TENANTS_FILE: tenants, their keys, quotas in items and priority classes. */
@Module({
  providers: [TenantsService],
  exports: [TenantsService],
})
export class TenantsModule {}
