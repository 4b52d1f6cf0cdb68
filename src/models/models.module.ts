import { Module } from '@nestjs/common';
import { ProxyModule } from '../proxy/proxy.module.js';
import { MirrorService } from './mirror.service.js';
import { ModelRouter } from './model-router.service.js';
import { RoutesFileService } from './routes-file.service.js';

/**
 * Model versions (ROUTES_FILE): the routes file kept current, the router
 * that picks a version per request, and the shadow copies to a mirror.
 */
@Module({
  imports: [ProxyModule],
  providers: [RoutesFileService, ModelRouter, MirrorService],
  exports: [RoutesFileService, ModelRouter, MirrorService],
})
export class ModelsModule {}
