import { Module } from '@nestjs/common';
import { TenantsModule } from '../tenants/tenants.module.js';
import { ApiKeysService } from './api-keys.service.js';
import { AuthGuard } from './auth.guard.js';
import { Authenticator } from './authenticator.service.js';
import { JwtVerifier } from './jwt-verifier.service.js';

/** API keys and JWT bearer tokens: the access check of the prediction path and of `GET /`. */
@Module({
  imports: [TenantsModule],
  providers: [ApiKeysService, JwtVerifier, Authenticator, AuthGuard],
  exports: [Authenticator, AuthGuard],
})
export class AuthModule {}
