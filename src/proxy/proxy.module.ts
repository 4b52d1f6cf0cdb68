import { HttpModule } from '@nestjs/axios';
import { Module } from '@nestjs/common';
import { CacheModule } from '../cache/cache.module.js';
import { TerminusModule } from '@nestjs/terminus';
import { BackendClients } from './backend-clients.service.js';
import { BackendPoolService } from './backend-pool.service.js';
import { BackendHealthIndicator } from './backend.indicator.js';
import { MirrorService } from './mirror.service.js';
import { ModelRouter } from './model-router.service.js';
import { ModelsModule } from '../models/models.module.js';
import { PredictController } from './predict.controller.js';
import { ProxyService } from './proxy.service.js';

@Module({
  imports: [
    CacheModule,
    TerminusModule,
    ModelsModule,
    // The active health probes' client (their cost per call does not matter):
    // every status is an answer, never redirected or decompressed.
    HttpModule.register({
      validateStatus: null,
      maxRedirects: 0,
      decompress: false,
      proxy: false,
    }),
  ],
  controllers: [PredictController],
  providers: [
    BackendClients,
    ProxyService,
    BackendPoolService,
    BackendHealthIndicator,
    ModelRouter,
    MirrorService,
  ],
  exports: [BackendPoolService, BackendHealthIndicator],
})
export class ProxyModule {}
