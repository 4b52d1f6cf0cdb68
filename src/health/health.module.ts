import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { ProxyModule } from '../proxy/proxy.module.js';
import { HealthController } from './health.controller.js';
import { ShutdownService } from './shutdown.service.js';

@Module({
  imports: [TerminusModule.forRoot({ logger: false }), ProxyModule],
  controllers: [HealthController],
  providers: [ShutdownService],
})
export class HealthModule {}
