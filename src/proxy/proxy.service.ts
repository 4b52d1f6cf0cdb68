import { HttpService } from '@nestjs/axios';
import {
  BadGatewayException,
  GatewayTimeoutException,
  Inject,
  Injectable,
  Logger,
  OnApplicationShutdown,
  ServiceUnavailableException,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { AxiosResponse, RawAxiosRequestHeaders } from 'axios';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { firstValueFrom } from 'rxjs';
import '../common/request-context.js';
import { backendConfig } from '../config/backend.config.js';
import { securityConfig } from '../config/security.config.js';
import { serverConfig } from '../config/server.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { AdmissionService, OverloadedException } from './admission.service.js';
import {
  Backend,
  BackendPoolService,
  transportError,
} from './backend-pool.service.js';
import { backendRequestHeaders, endToEndHeaders } from './forward-headers.js';
import { destroyAdapter } from './node-http.adapter.js';

type FailureReason = 'connect' | 'reset' | 'try_timeout' | 'timeout' | 'status';

/** Why an attempt ended without an answer for the client. */
class AttemptFailed extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
    readonly response?: AxiosResponse<Readable>,
  ) {
    super(message);
  }
}

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
]);

interface Exchange {
  request: FastifyRequest;
  reply: FastifyReply;
  endpoint: string;
  pathAndQuery: string;
  headers: OutgoingHttpHeaders;
  body: Buffer | undefined;
  /** Aborted by the overall deadline or by the client leaving. */
  signal: AbortSignal;
  /** performance.now() at which BACKEND_TIMEOUT_MS ends (set only with admission control on). */
  deadline: number;
}

/**
 * Forwards a request to the backend pool: bytes in, bytes out. The body was
 * read once into a Buffer (bounded by MAX_BODY_BYTES), so a failed attempt can
 * be replayed on another backend; the answer goes back untouched except for
 * hop-by-hop headers.
 */
@Injectable()
export class ProxyService implements OnApplicationShutdown {
  private readonly logger = new Logger(ProxyService.name);
  private readonly stripCredentials: boolean;
  private readonly series = new Map<
    string,
    { record(seconds: number): void }
  >();

  constructor(
    private readonly http: HttpService,
    private readonly pool: BackendPoolService,
    private readonly admission: AdmissionService,
    private readonly metrics: MetricsService,
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
  }

  onApplicationShutdown(): void {
    destroyAdapter(this.http.axiosRef.defaults.adapter);
  }

  async forward(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const endpoint = request.routeOptions.url ?? request.url;
    const q = request.url.indexOf('?');
    // One deadline for all attempts, and cancellation when the client leaves.
    const abort = new AbortController();
    const deadline = setTimeout(
      () => abort.abort('timeout'),
      this.config.timeoutMs,
    );
    const onClose = () => {
      if (!reply.raw.writableFinished) abort.abort(CLIENT_GONE);
    };
    reply.raw.once('close', onClose);
    const exchange: Exchange = {
      request,
      reply,
      endpoint,
      pathAndQuery: q === -1 ? endpoint : endpoint + request.url.slice(q),
      headers: backendRequestHeaders(request.headers, {
        stripCredentials: this.stripCredentials,
        clientIp: request.ip,
        proto: request.protocol,
        host: request.headers.host,
        requestId: request.id,
      }),
      body: Buffer.isBuffer(request.body) ? request.body : undefined,
      signal: abort.signal,
      deadline: this.admission.enabled
        ? performance.now() + this.config.timeoutMs
        : 0,
    };
    try {
      await this.forwardWithRetries(exchange);
    } finally {
      clearTimeout(deadline);
      reply.raw.off('close', onClose);
    }
  }

  private async forwardWithRetries(exchange: Exchange): Promise<void> {
    this.pool.countRequest();
    const tried = new Set<Backend>();
    let failure: AttemptFailed | undefined;
    for (let attempt = 0; attempt <= this.config.retryAttempts; attempt++) {
      const backend = this.admission.enabled
        ? await this.admit(tried, exchange, attempt)
        : this.pool.pick(tried);
      if (!backend) break;
      if (attempt > 0) {
        if (!this.pool.takeRetry()) {
          if (this.admission.enabled) this.admission.release(backend);
          break;
        }
        this.metrics.retries
          .labels(exchange.endpoint, failure?.reason ?? 'unknown')
          .inc();
      }
      tried.add(backend);
      try {
        await this.attempt(backend, exchange);
        return;
      } catch (err) {
        if (!(err instanceof AttemptFailed)) throw err;
        failure?.response?.data.destroy();
        failure = err;
        if (
          exchange.signal.aborted ||
          exchange.reply.sent ||
          !this.retryable(err)
        )
          break;
      }
    }
    // Nothing more can be said to a client that left or already has its answer's head.
    if (exchange.signal.reason === CLIENT_GONE || exchange.reply.sent) {
      failure?.response?.data.destroy();
      return;
    }
    // A retryable 5xx that no other backend could replace is relayed as it came.
    if (failure?.response) return this.relay(failure.response, exchange);
    throw this.clientError(failure, exchange.reply);
  }

  /**
   * A backend with a slot held for this attempt (BACKEND_MAX_CONCURRENCY).
   * A first attempt that is shed answers 503 overloaded; a shed retry ends the
   * retries and the previous failure stands.
   */
  private async admit(
    tried: ReadonlySet<Backend>,
    exchange: Exchange,
    attempt: number,
  ): Promise<Backend | undefined> {
    try {
      return await this.admission.acquire(
        tried,
        exchange.signal,
        exchange.deadline,
      );
    } catch (err) {
      if (!(err instanceof OverloadedException) || attempt === 0) {
        if (err instanceof OverloadedException)
          exchange.reply.header('retry-after', String(err.retryAfterSeconds));
        throw err;
      }
      return undefined;
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

  private clientError(failure: AttemptFailed | undefined, reply: FastifyReply) {
    const noneAvailable =
      this.pool.backends.length > 1 && this.pool.available().length === 0;
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
  private async attempt(backend: Backend, exchange: Exchange): Promise<void> {
    const started = performance.now();
    const info = (exchange.request.raw.gateway ??= {});
    info.backend = backend.url;
    const signal = this.trySignal(exchange.signal);
    this.pool.started(backend);
    let status: number | 'error' = 'error';
    let failed: AttemptFailed | undefined;
    try {
      let response: AxiosResponse<Readable>;
      try {
        response = await firstValueFrom(
          this.http.request<Readable>({
            baseURL: backend.url,
            url: exchange.pathAndQuery,
            method: exchange.request.method,
            headers: exchange.headers as RawAxiosRequestHeaders,
            data: exchange.body,
            signal,
            // Repeated per request although it is the default: @nestjs/axios
            // reads it here and otherwise cancels every finished request,
            // building a CanceledError (with a stack) each time.
            responseType: 'stream',
          }),
        );
      } catch (err) {
        throw (failed = this.classify(err, signal, exchange.signal));
      }
      status = response.status;
      if (this.config.retryOn5xx && RETRYABLE_STATUS.has(status)) {
        throw (failed = new AttemptFailed(
          'status',
          `backend answered ${status}`,
          response,
        ));
      }
      await this.relay(response, exchange, signal).catch((err: unknown) => {
        throw (failed =
          err instanceof AttemptFailed
            ? err
            : this.classify(err, signal, exchange.signal));
      });
    } finally {
      const seconds = (performance.now() - started) / 1000;
      const ok = !failed && typeof status === 'number' && status < 500;
      this.pool.finished(backend, ok ? 'success' : 'failure');
      // A timeout is latency too (the slowest kind): only fast failures are not.
      if (this.admission.enabled)
        this.admission.release(
          backend,
          ok || failed?.reason.endsWith('timeout') ? seconds * 1000 : undefined,
        );
      this.backendSeries(exchange.endpoint, status, backend.url).record(
        seconds,
      );
      info.backendStatus = status;
      info.backendDurationMs = Math.round(seconds * 1e6) / 1000;
      if (
        failed &&
        failed.reason !== 'status' &&
        exchange.signal.reason !== CLIENT_GONE
      ) {
        this.logger.warn(
          {
            backend_url: backend.url,
            error: failed.message,
            reason: failed.reason,
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

  private trySignal(parent: AbortSignal): AbortSignal {
    if (this.config.tryTimeoutMs === 0) return parent;
    return AbortSignal.any([
      parent,
      abortAfter(this.config.tryTimeoutMs, TRY_TIMEOUT),
    ]);
  }

  /**
   * Sends the backend's answer. A body with a Content-Length up to
   * MAX_BODY_BYTES is read whole before anything is sent, so a backend that
   * stalls or resets mid-body still gets a clean 504/502 (or a retry); larger
   * or chunked bodies stream through.
   */
  private async relay(
    response: AxiosResponse<Readable>,
    exchange: Exchange,
    signal = exchange.signal,
  ): Promise<void> {
    const { reply } = exchange;
    const length = Number(response.headers['content-length']);
    const buffered =
      Number.isFinite(length) && length <= this.server.maxBodyBytes;
    const payload = buffered
      ? await readBody(response.data, signal)
      : response.data;
    if (!buffered) {
      // Once streaming, a backend failure can only cut the client's answer:
      // count it as the 502/504 it is, not as a client abort (499).
      response.data.once('error', () => {
        if (exchange.signal.reason === CLIENT_GONE) return;
        (exchange.request.raw.gateway ??= {}).cutStatus = signal.aborted
          ? 504
          : 502;
      });
    }
    reply.code(response.status);
    const headers = endToEndHeaders(response.headers as IncomingHttpHeaders);
    for (const name in headers) reply.header(name, headers[name]);
    await reply.send(payload);
  }

  private classify(
    err: unknown,
    signal: AbortSignal,
    overall: AbortSignal,
  ): AttemptFailed {
    if (overall.aborted)
      return new AttemptFailed('timeout', String(overall.reason));
    if (signal.aborted) return new AttemptFailed('try_timeout', TRY_TIMEOUT);
    const code = transportError(err);
    return new AttemptFailed(
      CONNECT_ERRORS.has(code) ? 'connect' : 'reset',
      code,
    );
  }
}

function abortAfter(ms: number, reason: string): AbortSignal {
  const controller = new AbortController();
  setTimeout(() => controller.abort(reason), ms).unref();
  return controller.signal;
}

function readBody(stream: Readable, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onAbort = () => stream.destroy(new Error(String(signal.reason)));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
    stream.once('end', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
  });
}
