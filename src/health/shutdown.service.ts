import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { serverConfig } from '../config/server.config.js';

/** Node's own link from a connection to the answer it is writing. */
interface ServerSocket extends Socket {
  _httpMessage?: ServerResponse | null;
}

function answerThenClose(_req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
}

/**
 * Draining: readiness fails from the first moment of shutdown, the listener
 * stays open for SHUTDOWN_DELAY_MS so load balancers notice, then Nest closes
 * the server, which waits for in-flight requests; after SHUTDOWN_TIMEOUT_MS
 * the connections still open are cut.
 *
 * Keep-alive clients: from the signal on, every answer (those in flight
 * included) carries `Connection: close` and its connection closes once it is
 * sent; a request arriving on an open connection, during the delay or after,
 * is served that way. Idle connections close with the listener. So the
 * process exits as soon as its last answer is out, not at the timeout.
 */
@Injectable()
export class ShutdownService
  implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly logger = new Logger(ShutdownService.name);
  /** Open client connections (per connection, nothing per request). */
  private readonly sockets = new Set<ServerSocket>();
  private draining = false;
  private forceClose?: NodeJS.Timeout;

  constructor(
    @Inject(serverConfig.KEY)
    private readonly config: ConfigType<typeof serverConfig>,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  onModuleInit(): void {
    const sockets = this.sockets;
    function forget(this: ServerSocket): void {
      sockets.delete(this);
    }
    this.server().on('connection', (socket: ServerSocket) => {
      sockets.add(socket);
      socket.once('close', forget);
    });
  }

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
    const server = this.server();
    server.prependListener('request', answerThenClose);
    for (const socket of this.sockets) this.closeWhenAnswered(socket);
    if (this.config.shutdownDelayMs > 0)
      await sleep(this.config.shutdownDelayMs);
    this.forceClose = setTimeout(() => {
      this.logger.warn('drain timeout reached: closing remaining connections');
      server.closeAllConnections();
    }, this.config.shutdownTimeoutMs);
    this.forceClose.unref();
    this.logger.log('listener closing, draining in-flight requests');
  }

  /**
   * A busy connection closes after its answer: Node does it for an answer
   * not yet begun once it says `Connection: close`; one already streaming
   * is followed to its end.
   */
  private closeWhenAnswered(socket: ServerSocket): void {
    const answer = socket._httpMessage;
    if (!answer) return;
    if (!answer.headersSent) {
      answer.setHeader('connection', 'close');
      return;
    }
    // Node hands the socket to the next pipelined answer before 'close'.
    answer.once('close', () => {
      if (socket._httpMessage) this.closeWhenAnswered(socket);
      else socket.destroy();
    });
  }

  private server(): Server {
    return this.adapterHost.httpAdapter.getHttpServer() as Server;
  }

  onApplicationShutdown(signal?: string): void {
    clearTimeout(this.forceClose);
    this.logger.log({ signal }, 'shutdown complete');
  }
}
