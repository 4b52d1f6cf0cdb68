import { HttpModule } from '@nestjs/axios';
import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { BackendClients } from './backend-clients.service.js';
import { BackendPoolService } from './backend-pool.service.js';
import { BackendHealthIndicator } from './backend.indicator.js';
import { ProxyService } from './proxy.service.js';

/**
 * Forwarding to backend pools: undici clients for traffic, pools with
 * health checks, outlier ejection, admission and retries, and the Terminus
 * indicator over them.
 */
@Module({
  imports: [
    TerminusModule,
    // The active health probes' client (their cost per call does not matter):
    // every status is an answer, never redirected or decompressed.
    HttpModule.register({
      validateStatus: null,
      maxRedirects: 0,
      decompress: false,
      proxy: false,
    }),
  ],
  providers: [
    BackendClients,
    ProxyService,
    BackendPoolService,
    BackendHealthIndicator,
  ],
  exports: [ProxyService, BackendPoolService, BackendHealthIndicator],
})
export class ProxyModule {}
