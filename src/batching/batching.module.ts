import { Module } from '@nestjs/common';
import { ProxyModule } from '../proxy/proxy.module.js';
import { BatchingService } from './batching.service.js';

/** Micro-batching of /predict calls into the model's batch endpoint. */
@Module({
  imports: [ProxyModule],
  providers: [BatchingService],
  exports: [BatchingService],
})
export class BatchingModule {}
