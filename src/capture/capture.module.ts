import { Module } from '@nestjs/common';
import { CaptureService } from './capture.service.js';

/** Inference capture: sampled exchanges as CloudEvents or Redis stream entries. */
@Module({
  providers: [CaptureService],
  exports: [CaptureService],
})
export class CaptureModule {}
