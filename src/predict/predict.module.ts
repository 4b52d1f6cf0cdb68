import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module.js';
import { BatchingModule } from '../batching/batching.module.js';
import { CacheModule } from '../cache/cache.module.js';
import { CaptureModule } from '../capture/capture.module.js';
import { ModelsModule } from '../models/models.module.js';
import { ProxyModule } from '../proxy/proxy.module.js';
import { RateLimitModule } from '../rate-limit/rate-limit.module.js';
import { PredictController } from './predict.controller.js';
import { PredictPipeline } from './predict.pipeline.js';

/** The prediction routes and the path their requests take (PredictPipeline). */
@Module({
  imports: [
    AuthModule,
    RateLimitModule,
    CaptureModule,
    CacheModule,
    ModelsModule,
    BatchingModule,
    ProxyModule,
  ],
  controllers: [PredictController],
  providers: [PredictPipeline],
})
export class PredictModule {}
