import { Global, Module } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { tracingConfig } from '../config/tracing.config.js';
import { TracingService } from './tracing.service.js';

@Global()
@Module({
  providers: [
    {
      provide: TracingService,
      inject: [tracingConfig.KEY],
      useFactory: (config: ConfigType<typeof tracingConfig>) =>
        TracingService.create(config),
    },
  ],
  exports: [TracingService],
})
export class TracingModule {}
