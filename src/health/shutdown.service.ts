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
import {
  currentResponse,
  leaveIdleConnectionsOnClose,
} from '../common/node-internals.js';
import { serverConfig } from '../config/server.config.js';

/**
 * How long a connection idle at the signal stays open for a request
 * already on its way (a keep-alive client sends its next one as soon as an
 * answer arrives, within milliseconds).
 */
export const IDLE_GRACE_MS = 1000;

/**
 * Draining: readiness fails from the first moment of shutdown, the listener
 * stays open for SHUTDOWN_DELAY_MS so load balancers notice, then Nest closes
 * the server, which waits for in-flight requests; after SHUTDOWN_TIMEOUT_MS
 * the connections still open are cut.
 *
 * Keep-alive clients: from the signal on, every answer (those in flight
 * included) carries `Connection: close` and its connection closes once it is
 * sent; a request arriving on an open connection, during the delay or after,
 * is served that way. A connection idle at the signal is closed once it has
 * stayed idle for IDLE_GRACE_MS (not at once, as Node would: a request may
 * be on its way). So the process exits as soon as its last answer is out,
 * not at the timeout.
 */
@Injectable()
export class ShutdownService
  implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown
{
  private readonly logger = new Logger(ShutdownService.name);
  /** Open client connections (per connection, nothing per request). */
  private readonly sockets = new Set<Socket>();
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

  /** Makes the server leave idle connections to the drain when it closes. */
  onModuleInit(): void {
    leaveIdleConnectionsOnClose(
      this.adapterHost.httpAdapter.getHttpServer() as Server,
    );
  }

  /** Server 'connection': keeps the open connections, to close them when draining. */
  readonly trackConnection = (socket: Socket): void => {
    this.sockets.add(socket);
    socket.once('close', this.forget);
  };

  /** One listener for every connection's close (no closure per connection). */
  private readonly forget = ((sockets: Set<Socket>) =>
    function (this: Socket): void {
      sockets.delete(this);
    })(this.sockets);

  /** Server 'request' (first listener): while draining, the answer closes its connection. */
  readonly closeWhenDraining = (
    _req: IncomingMessage,
    res: ServerResponse,
  ): void => {
    if (this.draining) res.setHeader('connection', 'close');
  };

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
    for (const socket of this.sockets) this.closeWhenAnswered(socket);
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

  /**
   * A busy connection closes after its answer: Node does it for an answer
   * not yet begun once it says `Connection: close`; one already streaming
   * is followed to its end.
   */
  private closeWhenAnswered(socket: Socket): void {
    const answer = currentResponse(socket);
    if (!answer) {
      this.closeIfStillIdle(socket);
      return;
    }
    if (!answer.headersSent) {
      answer.setHeader('connection', 'close');
      return;
    }
    // Node hands the socket to the next pipelined answer before 'close'.
    answer.once('close', () => {
      if (currentResponse(socket)) this.closeWhenAnswered(socket);
      else socket.destroy();
    });
  }

  /** An idle connection: closed unless a request comes within IDLE_GRACE_MS (then after its answer). */
  private closeIfStillIdle(socket: Socket): void {
    const timer = setTimeout(() => {
      if (!currentResponse(socket)) socket.destroy();
    }, IDLE_GRACE_MS);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
  }

  onApplicationShutdown(signal?: string): void {
    clearTimeout(this.forceClose);
    this.logger.log({ signal }, 'shutdown complete');
  }
}
