import {
  BadGatewayException,
  GatewayTimeoutException,
  Inject,
  Injectable,
  Logger,
  NotFoundException,
  ServiceUnavailableException,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import '../common/request-context.js';
import { CacheService, type CacheFill } from '../cache/cache.service.js';
import { dispatchBody, type RequestBody } from '../common/request-body.js';
import { REQUEST_ID_HEADER } from '../common/request-id.js';
import { backendConfig } from '../config/backend.config.js';
import { securityConfig } from '../config/security.config.js';
import { serverConfig } from '../config/server.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { Admission, OverloadedException } from './admission.js';
import { BackendAnswer, BackendCall } from './backend-call.js';
import { type Backend, BackendPool, transportError } from './backend-pool.js';
import { BackendPoolService } from './backend-pool.service.js';
import { backendRequestHeaders, endToEndHeaders } from './forward-headers.js';
import { MirrorService } from './mirror.service.js';
import {
  MODEL_HEADER,
  MODEL_VERSION_HEADER,
  ModelRouter,
} from './model-router.service.js';

type FailureReason = 'connect' | 'reset' | 'try_timeout' | 'timeout' | 'status';

/** Why an attempt ended without an answer for the client. */
class AttemptFailed extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
    readonly answer?: BackendAnswer,
  ) {
    super(message);
  }
}

/** Why the whole exchange was cut short. */
type Cut = 'timeout' | 'client';

const CLIENT_GONE = 'client closed the connection';
const TRY_TIMEOUT = 'try timeout';
const RETRYABLE_STATUS = new Set([502, 503, 504]);
/** Failures before any response byte: the request can be replayed on another backend. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
]);

interface Exchange {
  request: FastifyRequest;
  reply: FastifyReply;
  /** The implicit pool, or the model version's. */
  pool: BackendPool;
  endpoint: string;
  /** Backend path without the backend's own prefix: the route plus the client's query. */
  pathAndQuery: string;
  headers: IncomingHttpHeaders;
  body: RequestBody | undefined;
  /** Set when the overall deadline fired or the client left. */
  cut: Cut | undefined;
  /** The attempt in flight, to cancel when the exchange is cut. */
  call: BackendCall | undefined;
  /** Set when the response cache missed: takes the answer before it is sent. */
  fill: CacheFill | undefined;
  /** performance.now() at which BACKEND_TIMEOUT_MS ends (0 unless the pool has admission control). */
  deadline: number;
  /** Leaves the admission queue (set while waiting there). */
  onCut: (() => void) | undefined;
}

/**
 * Forwards a request to the backend pool: bytes in, bytes out. The body was
 * read once into a Buffer (bounded by MAX_BODY_BYTES), so a failed attempt can
 * be replayed on another backend; the answer goes back untouched except for
 * hop-by-hop headers. Per request it allocates the exchange, one deadline
 * timer and the undici handler of each attempt: no AbortController, no
 * stream for a small answer.
 */
@Injectable()
export class ProxyService {
  private readonly logger = new Logger(ProxyService.name);
  private readonly stripCredentials: boolean;
  private readonly dropUnderscoreHeaders: boolean;
  /** BACKEND_URL(S) when there is no routes file. */
  private readonly implicit: BackendPool | undefined;
  private readonly series = new Map<
    string,
    { record(seconds: number): void }
  >();

  constructor(
    pools: BackendPoolService,
    private readonly router: ModelRouter,
    private readonly mirror: MirrorService,
    private readonly metrics: MetricsService,
    private readonly cache: CacheService,
    @Inject(backendConfig.KEY)
    private readonly config: ConfigType<typeof backendConfig>,
    @Inject(serverConfig.KEY)
    private readonly server: ConfigType<typeof serverConfig>,
    @Inject(securityConfig.KEY)
    security: ConfigType<typeof securityConfig>,
  ) {
    // The gateway's own API key is for the gateway: never passed on.
    this.stripCredentials =
      security.apiKeys.length > 0 || security.apiKeysFile !== undefined;
    this.dropUnderscoreHeaders = security.dropUnderscoreHeaders;
    this.implicit = pools.implicit;
  }

  /**
   * POST /predict and /batch_predict; `model` from /models/{model}/…, else
   * X-Model or the default model when a routes file is on. Through the
   * response cache when it is on.
   */
  forward(
    request: FastifyRequest,
    reply: FastifyReply,
    model?: string,
  ): Promise<void> {
    return this.cache.enabled
      ? this.cache.through(request, reply, (fill) =>
          this.forwardToBackend(request, reply, model, fill),
        )
      : this.forwardToBackend(request, reply, model);
  }

  private async forwardToBackend(
    request: FastifyRequest,
    reply: FastifyReply,
    model: string | undefined,
    fill?: CacheFill,
  ): Promise<void> {
    if (model !== undefined || this.router.enabled) {
      const header = request.headers[MODEL_HEADER];
      return this.forwardToModel(
        request,
        reply,
        model ?? (typeof header === 'string' ? header : undefined),
        fill,
      );
    }
    const endpoint = request.routeOptions.url ?? request.url;
    await this.run(this.open(request, reply, this.implicit!, endpoint, fill));
  }

  /**
   * To a model version (ROUTES_FILE): `model` from the path or X-Model, the
   * default model when undefined. The backend gets the plain route
   * (/predict, /batch_predict); a sampled copy goes to the model's mirror
   * once the primary attempt is under way.
   */
  private async forwardToModel(
    request: FastifyRequest,
    reply: FastifyReply,
    model: string | undefined,
    fill: CacheFill | undefined,
  ): Promise<void> {
    if (!this.router.enabled) {
      throw new NotFoundException(
        `unknown model ${JSON.stringify(String(model).slice(0, 64))}`,
      );
    }
    const version = this.router.route(request, model);
    reply.header(MODEL_VERSION_HEADER, version.name);
    const info = (request.raw.gateway ??= {});
    info.model = version.model.name;
    info.version = version.name;
    this.router.track(version, request, reply);
    const route = request.routeOptions.url ?? request.url;
    const endpoint = route.slice(route.lastIndexOf('/'));
    const exchange = this.open(request, reply, version.pool, endpoint, fill);
    const answer = this.run(exchange);
    const { mirror } = version.model;
    if (mirror !== undefined) {
      this.mirror.send(
        mirror,
        {
          method: request.method,
          pathAndQuery: exchange.pathAndQuery,
          headers: exchange.headers,
          body: exchange.body,
        },
        answer,
      );
    }
    await answer;
  }

  private open(
    request: FastifyRequest,
    reply: FastifyReply,
    pool: BackendPool,
    endpoint: string,
    fill: CacheFill | undefined,
  ): Exchange {
    const q = request.url.indexOf('?');
    return {
      request,
      reply,
      pool,
      endpoint,
      pathAndQuery: q === -1 ? endpoint : endpoint + request.url.slice(q),
      headers: backendRequestHeaders(request.headers, {
        stripCredentials: this.stripCredentials,
        clientIp: request.ip,
        proto: request.protocol,
        host: request.headers.host,
        requestId: request.id,
        dropUnderscoreHeaders: this.dropUnderscoreHeaders,
      }) as IncomingHttpHeaders,
      body: request.body as RequestBody | undefined,
      cut: undefined,
      call: undefined,
      fill,
      deadline: pool.admission ? performance.now() + this.config.timeoutMs : 0,
      onCut: undefined,
    };
  }

  /** The exchange under one deadline; settles with the answer the client got, if any. */
  private async run(exchange: Exchange): Promise<BackendAnswer | undefined> {
    const { reply } = exchange;
    // One deadline for all attempts, and cancellation when the client leaves.
    const deadline = setTimeout(
      () => cutShort(exchange, 'timeout'),
      this.config.timeoutMs,
    );
    const onClose = () => {
      if (!reply.raw.writableFinished) cutShort(exchange, 'client');
    };
    reply.raw.once('close', onClose);
    try {
      return await this.forwardWithRetries(exchange);
    } finally {
      clearTimeout(deadline);
      reply.raw.off('close', onClose);
    }
  }

  private async forwardWithRetries(
    exchange: Exchange,
  ): Promise<BackendAnswer | undefined> {
    const { pool } = exchange;
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
        this.metrics.retries
          .labels(exchange.endpoint, failure?.reason ?? 'unknown')
          .inc();
      try {
        return await this.attempt(backend, exchange, attempt, failure?.reason);
      } catch (err) {
        if (!(err instanceof AttemptFailed)) throw err;
        discard(failure);
        failure = err;
        if (exchange.cut || exchange.reply.sent || !this.retryable(err)) break;
        (tried ??= new Set()).add(backend);
      }
    }
    // Nothing more can be said to a client that left or already has its answer's head.
    if (exchange.cut === 'client' || exchange.reply.sent) {
      discard(failure);
      return undefined;
    }
    // A retryable 5xx that no other backend could replace is relayed as it came.
    if (failure?.answer) {
      await this.relay(failure.answer, exchange);
      return failure.answer;
    }
    throw this.clientError(failure, exchange);
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
      if (!(err instanceof OverloadedException)) throw err;
      if (attempt > 0) return undefined;
      exchange.reply.header('retry-after', String(err.retryAfterSeconds));
      throw err;
    }
  }

  private retryable(err: AttemptFailed): boolean {
    if (err.reason === 'connect') return true;
    // The backend may have started work: replay only because inference is idempotent.
    return (
      (err.reason === 'status' || err.reason === 'try_timeout') &&
      this.config.retryOn5xx
    );
  }

  private clientError(failure: AttemptFailed | undefined, exchange: Exchange) {
    const { pool, reply } = exchange;
    const noneAvailable =
      pool.backends.length > 1 && pool.available().length === 0;
    if (!failure || noneAvailable) {
      reply.header(
        'retry-after',
        String(Math.ceil(this.config.healthCheckIntervalMs / 1000)),
      );
      return new ServiceUnavailableException(
        failure
          ? `no backend is available (last error: ${failure.message})`
          : 'no backend is available',
      );
    }
    if (failure.reason === 'timeout' || failure.reason === 'try_timeout') {
      return new GatewayTimeoutException(
        `backend did not answer within ${this.config.timeoutMs} ms`,
      );
    }
    return new BadGatewayException(`backend unreachable (${failure.message})`);
  }

  /** One try on one backend, with its own timeout when BACKEND_TRY_TIMEOUT_MS is set. */
  private async attempt(
    backend: Backend,
    exchange: Exchange,
    attempt: number,
    retryReason: FailureReason | undefined,
  ): Promise<BackendAnswer> {
    const started = performance.now();
    const info = (exchange.request.raw.gateway ??= {});
    info.backend = backend.url;
    const { client } = backend;
    const path = client.prefix + exchange.pathAndQuery;
    // Tracing on: this try's traceparent, and its client span when sampled.
    const span = info.trace?.attempt(
      exchange.headers,
      backend.url,
      path,
      attempt,
      retryReason,
    );
    exchange.pool.started(backend);
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
          client.pool.dispatch(
            {
              path,
              method: exchange.request.method,
              headers: exchange.headers,
              body: dispatchBody(exchange.body),
            },
            call,
          );
          if (exchange.cut) call.abort(new Error(exchange.cut));
        });
      } catch (err) {
        throw (failed = classify(err, exchange, tryExpired));
      }
      status = answer.status;
      if (this.config.retryOn5xx && RETRYABLE_STATUS.has(status)) {
        throw (failed = new AttemptFailed(
          'status',
          `backend answered ${status}`,
          answer,
        ));
      }
      await this.relay(answer, exchange, () => tryExpired).catch(
        (err: unknown) => {
          throw (failed = classify(err, exchange, tryExpired));
        },
      );
      return answer;
    } finally {
      clearTimeout(tryTimer);
      exchange.call = undefined;
      const seconds = (performance.now() - started) / 1000;
      const ok = !failed && typeof status === 'number' && status < 500;
      exchange.pool.finished(backend, ok ? 'success' : 'failure');
      // A timeout is latency too (a lower bound of it): only fast failures are not.
      const timedOut = !ok && !!failed?.reason.endsWith('timeout');
      exchange.pool.admission?.release(
        backend,
        ok || timedOut ? seconds * 1000 : undefined,
        timedOut,
      );
      this.backendSeries(exchange.endpoint, status, backend.url).record(
        seconds,
      );
      info.backendStatus = status;
      info.backendDurationMs = Math.round(seconds * 1e6) / 1000;
      span?.end(status, failed?.reason);
      if (failed && failed.reason !== 'status' && exchange.cut !== 'client') {
        this.logger.warn(
          {
            request_id: exchange.request.id,
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

  /**
   * The backend metrics' children for one (endpoint, status, backend), looked
   * up once: the label values are bounded (routes, statuses, the pool).
   */
  private backendSeries(
    endpoint: string,
    status: number | 'error',
    backend: string,
  ) {
    const key = `${endpoint} ${status} ${backend}`;
    let series = this.series.get(key);
    if (!series) {
      const requests = this.metrics.backendRequests.labels(
        endpoint,
        String(status),
        backend,
      );
      const duration = this.metrics.backendDuration.labels(endpoint, backend);
      series = {
        record: (seconds: number) => {
          requests.inc();
          duration.observe(seconds);
        },
      };
      this.series.set(key, series);
    }
    return series;
  }

  /** Sends the backend's answer: a Buffer at once, a stream as it comes. */
  private async relay(
    answer: BackendAnswer,
    exchange: Exchange,
    tryExpired = () => false,
  ): Promise<void> {
    const { reply, request } = exchange;
    if (answer.body instanceof Readable) {
      // Once streaming, a backend failure can only cut the client's answer:
      // count it as the 502/504 it is, not as a client abort (499).
      answer.body.once('error', () => {
        if (exchange.cut === 'client') return;
        (request.raw.gateway ??= {}).cutStatus =
          exchange.cut === 'timeout' || tryExpired() ? 504 : 502;
      });
    }
    reply.code(answer.status);
    const headers = endToEndHeaders(answer.headers);
    if (exchange.fill && Buffer.isBuffer(answer.body)) {
      await exchange.fill.store(answer.status, headers, answer.body);
    }
    for (const name in headers) reply.header(name, headers[name]);
    reply.header(REQUEST_ID_HEADER, request.id);
    await reply.send(answer.body);
  }
}

function cutShort(exchange: Exchange, why: Cut): void {
  exchange.cut ??= why;
  exchange.call?.abort(new Error(why));
  exchange.onCut?.();
}

/** Frees what a failed attempt still holds (a streamed answer not relayed). */
function discard(failure: AttemptFailed | undefined): void {
  const body = failure?.answer?.body;
  if (body instanceof Readable) body.destroy();
}

function classify(
  err: unknown,
  exchange: Exchange,
  tryExpired: boolean,
): AttemptFailed {
  if (exchange.cut) {
    return new AttemptFailed(
      'timeout',
      exchange.cut === 'client' ? CLIENT_GONE : 'timeout',
    );
  }
  if (tryExpired) return new AttemptFailed('try_timeout', TRY_TIMEOUT);
  const code = transportError(err);
  return new AttemptFailed(
    CONNECT_ERRORS.has(code) ? 'connect' : 'reset',
    code,
  );
}
