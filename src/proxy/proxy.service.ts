import { Inject, Injectable } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import type { Priority } from '../common/priority.js';
import type { RequestBody } from '../common/request-body.js';
import { backendConfig } from '../config/backend.config.js';
import { securityConfig } from '../config/security.config.js';
import { serverConfig } from '../config/server.config.js';
import type { BackendAnswer } from './backend-call.js';
import { RETRYABLE_STATUS, statusError } from './backend-errors.js';
import type { BackendPool } from './backend-pool.js';
import { callOnce } from './call-once.js';
import { ExchangeRunner } from './exchange-runner.js';
import type { Outgoing } from './exchange.js';
import { backendRequestHeaders } from './forward-headers.js';
import type {
  AttemptObserver,
  Forwarding,
  ForwardRequest,
} from './forwarding.js';
import { CallerRecipient, ClientRecipient } from './relay.js';

/** A backend call's answer, read whole, and where it came from. */
export interface CallAnswer extends BackendAnswer {
  body: Buffer;
  backend: string;
  durationMs: number;
}

/**
 * Forwards a request to a backend pool: bytes in, bytes out. The body was
 * read once (bounded by MAX_BODY_BYTES), so a failed attempt can be replayed
 * on another backend within the retry budget; one deadline covers all
 * attempts; the answer goes back untouched except for hop-by-hop headers.
 * Knows nothing of the features before it: the caller passes an observer
 * for each attempt and a hook for the answer. Per request it allocates the
 * exchange, one deadline timer and the undici handler of each attempt.
 */
@Injectable()
export class ProxyService {
  private readonly dropUnderscoreHeaders: boolean;
  private readonly runner: ExchangeRunner;

  constructor(
    @Inject(backendConfig.KEY)
    private readonly config: ConfigType<typeof backendConfig>,
    @Inject(serverConfig.KEY)
    private readonly server: ConfigType<typeof serverConfig>,
    @Inject(securityConfig.KEY) security: ConfigType<typeof securityConfig>,
  ) {
    this.dropUnderscoreHeaders = security.dropUnderscoreHeaders;
    this.runner = new ExchangeRunner(config, server.maxBodyBytes);
  }

  /**
   * The request as the backends get it, for the backend route `endpoint`;
   * `stripCredentials`: the client's credentials were the gateway's own.
   */
  outgoing(
    request: FastifyRequest,
    endpoint: string,
    stripCredentials: boolean,
  ): ForwardRequest {
    const q = request.url.indexOf('?');
    return {
      method: request.method,
      pathAndQuery: q === -1 ? endpoint : endpoint + request.url.slice(q),
      headers: backendRequestHeaders(request.headers, {
        stripCredentials,
        clientIp: request.ip,
        proto: request.protocol,
        host: request.headers.host,
        requestId: request.id,
        dropUnderscoreHeaders: this.dropUnderscoreHeaders,
      }) as IncomingHttpHeaders,
      body: request.body as RequestBody | undefined,
    };
  }

  /**
   * Forwards a client's request and relays the answer, under one deadline,
   * with cancellation when the client leaves; settles with the answer the
   * client got, if any.
   */
  forward(
    client: Forwarding,
    pool: BackendPool,
    outgoing: ForwardRequest,
  ): Promise<BackendAnswer | undefined> {
    // A connection that can take no answer (the client-error handler has
    // refused it, or it is gone) gets no backend work done for it.
    if (!client.request.raw.socket.writable) return Promise.resolve(undefined);
    return this.runner.run(new ClientRecipient(client), pool, outgoing);
  }

  /**
   * A backend call made for the caller (a batch), with the same retries,
   * deadline and admission as a forwarding; `outgoing` may be made once a
   * backend slot is held (undefined then: nothing is sent). The answer is
   * read whole; a retryable 5xx that no other backend replaced is thrown
   * as the gateway's error, like a transport failure. `priority`: its
   * class in the admission queue.
   */
  async call(
    pool: BackendPool,
    outgoing: Outgoing,
    id: string,
    endpoint: string,
    observer: AttemptObserver | undefined,
    priority: Priority,
  ): Promise<CallAnswer | undefined> {
    const caller = new CallerRecipient(
      id,
      endpoint,
      observer,
      this.server.maxBodyBytes,
      priority,
    );
    await this.runner.run(caller, pool, outgoing);
    if (!caller.answer) return undefined;
    if (RETRYABLE_STATUS.has(caller.answer.status))
      throw statusError(caller.answer.status);
    return {
      ...caller.answer,
      backend: caller.backend!,
      durationMs: caller.durationMs,
    };
  }

  /**
   * One try on a pool with no retry and nothing relayed (a shadow copy):
   * the answer read whole up to MAX_BODY_BYTES; undefined on a transport
   * failure, a timeout or a 5xx.
   */
  callOnce(pool: BackendPool, outgoing: ForwardRequest) {
    return callOnce(
      pool,
      outgoing,
      this.config.timeoutMs,
      this.server.maxBodyBytes,
    );
  }
}
