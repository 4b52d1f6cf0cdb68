import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationShutdown,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { HttpAdapterHost } from '@nestjs/core';
import type { Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverConfig } from '../config/server.config.js';

/**
 * Draining: readiness fails from the first moment of shutdown, the listener
 * stays open for SHUTDOWN_DELAY_MS so load balancers notice, then Nest closes
 * the server, which waits for in-flight requests; after SHUTDOWN_TIMEOUT_MS
 * the connections still open are cut.
 */
@Injectable()
export class ShutdownService
  implements BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly logger = new Logger(ShutdownService.name);
  private draining = false;
  private forceClose?: NodeJS.Timeout;

  constructor(
    @Inject(serverConfig.KEY)
    private readonly config: ConfigType<typeof serverConfig>,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  get isDraining(): boolean {
    return this.draining;
  }

  async beforeApplicationShutdown(signal?: string): Promise<void> {
    this.draining = true;
    this.logger.log(
      {
        signal,
        delay_ms: this.config.shutdownDelayMs,
        timeout_ms: this.config.shutdownTimeoutMs,
      },
      'shutdown started: readiness now fails',
    );
    if (this.config.shutdownDelayMs > 0)
      await sleep(this.config.shutdownDelayMs);
    const server = this.adapterHost.httpAdapter.getHttpServer() as Server;
    this.forceClose = setTimeout(() => {
      this.logger.warn('drain timeout reached: closing remaining connections');
      server.closeAllConnections();
    }, this.config.shutdownTimeoutMs);
    this.forceClose.unref();
    this.logger.log('listener closing, draining in-flight requests');
  }

  onApplicationShutdown(signal?: string): void {
    clearTimeout(this.forceClose);
    this.logger.log({ signal }, 'shutdown complete');
  }
}
