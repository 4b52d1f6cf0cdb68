import { Module } from '@nestjs/common';
import { RoutesFileService } from './routes-file.service.js';

/** The routes file (ROUTES_FILE): which models and versions exist, kept current. */
@Module({
  providers: [RoutesFileService],
  exports: [RoutesFileService],
})
export class ModelsModule {}
