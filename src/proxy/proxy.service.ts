import { Inject, Injectable, Logger } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestBody } from '../common/request-body.js';
import { backendConfig } from '../config/backend.config.js';
import { securityConfig } from '../config/security.config.js';
import { serverConfig } from '../config/server.config.js';
import { OverloadedException } from '../common/overloaded.exception.js';
import type { Admission } from './admission.js';
import type { Backend } from './backend.js';
import { BackendAnswer, BackendCall, dispatch } from './backend-call.js';
import {
  AttemptFailed,
  classify,
  clientError,
  RETRYABLE_STATUS,
  retryable,
  TRY_TIMEOUT,
} from './backend-errors.js';
import type { BackendPool } from './backend-pool.js';
import { callOnce } from './call-once.js';
import { backendRequestHeaders } from './forward-headers.js';
import { Exchange } from './exchange.js';
import type { Forwarding, ForwardRequest } from './forwarding.js';
import { discard, relay } from './relay.js';

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
  private readonly logger = new Logger(ProxyService.name);
  private readonly dropUnderscoreHeaders: boolean;

  constructor(
    @Inject(backendConfig.KEY)
    private readonly config: ConfigType<typeof backendConfig>,
    @Inject(serverConfig.KEY)
    private readonly server: ConfigType<typeof serverConfig>,
    @Inject(securityConfig.KEY) security: ConfigType<typeof securityConfig>,
  ) {
    this.dropUnderscoreHeaders = security.dropUnderscoreHeaders;
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
   * Forwards under one deadline, with cancellation when the client leaves;
   * settles with the answer the client got, if any.
   */
  async forward(
    client: Forwarding,
    pool: BackendPool,
    outgoing: ForwardRequest,
  ): Promise<BackendAnswer | undefined> {
    // A connection that can take no answer (the client-error handler has
    // refused it, or it is gone) gets no backend work done for it.
    if (!client.request.raw.socket.writable) return undefined;
    const exchange = new Exchange(
      client,
      pool,
      outgoing,
      pool.admission ? performance.now() + this.config.timeoutMs : 0,
    );
    const response = client.reply.raw;
    const deadline = setTimeout(
      () => exchange.cutShort('timeout'),
      this.config.timeoutMs,
    );
    const onClose = () => {
      if (!response.writableFinished) exchange.cutShort('client');
    };
    response.once('close', onClose);
    try {
      return await this.withRetries(exchange);
    } finally {
      clearTimeout(deadline);
      response.off('close', onClose);
    }
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

  private async withRetries(
    exchange: Exchange,
  ): Promise<BackendAnswer | undefined> {
    const { pool } = exchange;
    const { reply } = exchange.client;
    pool.countRequest();
    let tried: Set<Backend> | undefined;
    let failure: AttemptFailed | undefined;
    for (let attempt = 0; attempt <= this.config.retryAttempts; attempt++) {
      // A retry needs a backend not tried yet, and the budget's yes at the
      // time of the failure (not after a wait for a slot).
      if (
        attempt > 0 &&
        (pool.candidates(tried).length === 0 || !pool.takeRetry())
      )
        break;
      const backend = pool.admission
        ? await this.admit(pool.admission, tried, exchange, attempt)
        : pool.pick(tried);
      if (!backend) break;
      if (attempt > 0)
        pool.metrics.retry(
          exchange.client.endpoint,
          failure?.reason ?? 'unknown',
        );
      try {
        return await this.attempt(backend, exchange, attempt, failure);
      } catch (err) {
        if (!(err instanceof AttemptFailed)) throw err;
        discard(failure);
        failure = err;
        if (
          exchange.cut ||
          reply.sent ||
          !retryable(err, this.config.retryOn5xx)
        )
          break;
        (tried ??= new Set()).add(backend);
      }
    }
    // Nothing more can be said to a client that left or already has its answer's head.
    if (exchange.cut === 'client' || reply.sent) {
      discard(failure);
      return undefined;
    }
    // A retryable 5xx that no other backend could replace is relayed as it came.
    if (failure?.answer) {
      await relay(failure.answer, exchange);
      return failure.answer;
    }
    const { error, retryAfter } = clientError(
      failure,
      pool.backends.length > 1 && pool.available().length === 0,
      this.config.timeoutMs,
      Math.ceil(this.config.healthCheckIntervalMs / 1000),
    );
    if (retryAfter !== undefined)
      reply.header('retry-after', String(retryAfter));
    throw error;
  }

  /**
   * A backend with a slot held for this attempt (BACKEND_MAX_CONCURRENCY).
   * A first attempt that is shed answers 503 overloaded; a shed retry ends the
   * retries and the previous failure stands.
   */
  private async admit(
    admission: Admission,
    tried: ReadonlySet<Backend> | undefined,
    exchange: Exchange,
    attempt: number,
  ): Promise<Backend | undefined> {
    try {
      return await admission.acquire(tried, exchange, exchange.deadline);
    } catch (err) {
      if (err instanceof OverloadedException && attempt > 0) return undefined;
      throw err;
    }
  }

  /** One try on one backend, with its own timeout when BACKEND_TRY_TIMEOUT_MS is set. */
  private async attempt(
    backend: Backend,
    exchange: Exchange,
    attempt: number,
    previous: AttemptFailed | undefined,
  ): Promise<BackendAnswer> {
    const started = performance.now();
    const { client, pool, outgoing } = exchange;
    const { state } = client;
    state.backend = backend.url;
    const path = backend.client.prefix + outgoing.pathAndQuery;
    const span = client.observer?.attempt(
      outgoing.headers,
      backend,
      path,
      attempt,
      previous?.reason,
    );
    pool.started(backend);
    let tryTimer: NodeJS.Timeout | undefined;
    let tryExpired = false;
    let status: number | 'error' = 'error';
    let failed: AttemptFailed | undefined;
    try {
      let answer: BackendAnswer;
      try {
        answer = await new Promise<BackendAnswer>((resolve, reject) => {
          const call = new BackendCall(
            this.server.maxBodyBytes,
            resolve,
            reject,
          );
          exchange.call = call;
          if (this.config.tryTimeoutMs > 0) {
            tryTimer = setTimeout(() => {
              tryExpired = true;
              call.abort(new Error(TRY_TIMEOUT));
            }, this.config.tryTimeoutMs);
          }
          dispatch(backend, outgoing, call);
          if (exchange.cut) call.abort(new Error(exchange.cut));
        });
      } catch (err) {
        throw (failed = classify(err, exchange.cut, tryExpired));
      }
      status = answer.status;
      if (this.config.retryOn5xx && RETRYABLE_STATUS.has(status)) {
        throw (failed = new AttemptFailed(
          'status',
          `backend answered ${status}`,
          answer,
        ));
      }
      await relay(answer, exchange, () => tryExpired).catch((err: unknown) => {
        throw (failed = classify(err, exchange.cut, tryExpired));
      });
      return answer;
    } finally {
      clearTimeout(tryTimer);
      exchange.call = undefined;
      const seconds = (performance.now() - started) / 1000;
      const ok = !failed && typeof status === 'number' && status < 500;
      pool.finished(backend, ok ? 'success' : 'failure');
      // A timeout is latency too (a lower bound of it): only fast failures are not.
      const timedOut = !ok && !!failed?.reason.endsWith('timeout');
      pool.admission?.release(
        backend,
        ok || timedOut ? seconds * 1000 : undefined,
        timedOut,
      );
      pool.metrics.call(client.endpoint, status, backend.url).record(seconds);
      state.backendStatus = status;
      state.backendDurationMs = Math.round(seconds * 1e6) / 1000;
      span?.end(status, failed?.reason);
      if (failed && failed.reason !== 'status' && exchange.cut !== 'client') {
        this.logger.warn(
          {
            request_id: client.request.id,
            backend_url: backend.url,
            error: failed.message,
            reason: failed.reason,
            trace_id: span?.traceId,
            span_id: span?.spanId,
          },
          'backend request failed',
        );
      }
    }
  }
}
