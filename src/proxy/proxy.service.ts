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
import type { Agent, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { firstValueFrom } from 'rxjs';
import '../common/request-context.js';
import { backendConfig } from '../config/backend.config.js';
import { serverConfig } from '../config/server.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import {
  Backend,
  BackendPoolService,
  transportError,
} from './backend-pool.service.js';
import { backendRequestHeaders, endToEndHeaders } from './forward-headers.js';

/** Why an attempt ended without an answer for the client. */
class AttemptFailed extends Error {
  constructor(
    readonly reason: 'connect' | 'reset' | 'timeout' | 'status',
    message: string,
    readonly response?: AxiosResponse<Readable>,
  ) {
    super(message);
  }
}

const CLIENT_GONE = 'client closed the connection';
const RETRYABLE_STATUS = new Set([502, 503, 504]);
/** Errors raised before the backend could have started work: safe to retry anywhere. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'EPIPE',
]);

/**
 * Forwards a request to the backend pool: bytes in, bytes out. The body was
 * read once into a Buffer (bounded by MAX_BODY_BYTES) so a failed attempt can
 * be replayed on another backend; the answer is streamed back untouched
 * except for hop-by-hop headers.
 */
@Injectable()
export class ProxyService implements OnApplicationShutdown {
  private readonly logger = new Logger(ProxyService.name);

  constructor(
    private readonly http: HttpService,
    private readonly pool: BackendPoolService,
    private readonly metrics: MetricsService,
    @Inject(backendConfig.KEY)
    private readonly config: ConfigType<typeof backendConfig>,
    @Inject(serverConfig.KEY)
    private readonly server: ConfigType<typeof serverConfig>,
  ) {}

  onApplicationShutdown(): void {
    (this.http.axiosRef.defaults.httpAgent as Agent | undefined)?.destroy();
    (this.http.axiosRef.defaults.httpsAgent as Agent | undefined)?.destroy();
  }

  async forward(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const endpoint = request.routeOptions.url ?? request.url;
    const q = request.url.indexOf('?');
    const pathAndQuery = q === -1 ? endpoint : endpoint + request.url.slice(q);
    const headers = backendRequestHeaders(request.headers, {
      clientIp: request.ip,
      proto: request.protocol,
      host: request.headers.host,
      requestId: request.id,
    });
    const body = Buffer.isBuffer(request.body) ? request.body : undefined;

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

    this.pool.countRequest();
    const tried = new Set<Backend>();
    let lastFailure: AttemptFailed | undefined;
    try {
      for (let attempt = 0; attempt <= this.config.retryAttempts; attempt++) {
        const backend = this.pool.pick(tried);
        if (!backend) break;
        if (attempt > 0) {
          if (!this.pool.takeRetry()) break;
          this.metrics.retries
            .labels(endpoint, lastFailure?.reason ?? 'unknown')
            .inc();
        }
        tried.add(backend);
        try {
          await this.attempt(
            backend,
            endpoint,
            pathAndQuery,
            headers,
            body,
            abort.signal,
            request,
            reply,
          );
          return;
        } catch (err) {
          if (!(err instanceof AttemptFailed)) throw err;
          lastFailure = err;
          if (abort.signal.aborted || !this.retryable(err)) break;
          err.response?.data.destroy();
        }
      }
      if (abort.signal.reason === CLIENT_GONE) return;
      this.fail(lastFailure, tried.size === 0);
      if (lastFailure?.response)
        await this.relay(lastFailure.response, reply, abort.signal);
    } finally {
      clearTimeout(deadline);
      reply.raw.off('close', onClose);
    }
  }

  private retryable(err: AttemptFailed): boolean {
    if (err.reason === 'connect') return true;
    return err.reason === 'status' && this.config.retryOn5xx;
  }

  /** Turns the last failure into the client's answer (a retryable 5xx is relayed as is). */
  private fail(failure: AttemptFailed | undefined, noBackend: boolean): void {
    if (failure?.response) return;
    if (!failure || noBackend) {
      throw new ServiceUnavailableException('no backend is available');
    }
    if (failure.reason === 'timeout') {
      throw new GatewayTimeoutException(
        `backend did not answer within ${this.config.timeoutMs} ms`,
      );
    }
    if (this.pool.available().length === 0 && this.pool.backends.length > 1) {
      throw new ServiceUnavailableException(
        `no backend is available (last error: ${failure.message})`,
      );
    }
    throw new BadGatewayException(`backend unreachable (${failure.message})`);
  }

  private async attempt(
    backend: Backend,
    endpoint: string,
    pathAndQuery: string,
    headers: OutgoingHttpHeaders,
    body: Buffer | undefined,
    signal: AbortSignal,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<void> {
    const started = performance.now();
    const info = (request.raw.gateway ??= {});
    info.backend = backend.url;
    this.pool.started(backend);
    let outcome: 'success' | 'failure' = 'failure';
    let status: number | 'error' = 'error';
    let failure = '';
    try {
      let response: AxiosResponse<Readable>;
      try {
        response = await firstValueFrom(
          this.http.request<Readable>({
            url: backend.url + pathAndQuery,
            method: request.method,
            headers: headers as RawAxiosRequestHeaders,
            data: body,
            signal,
            responseType: 'stream',
            decompress: false,
            maxRedirects: 0,
            validateStatus: null,
            transformRequest: [(data: unknown) => data],
          }),
        );
      } catch (err) {
        const failed = this.classify(err, signal);
        failure = failed.message;
        throw failed;
      }
      status = response.status;
      if (status >= 500) {
        if (this.config.retryOn5xx && RETRYABLE_STATUS.has(status)) {
          throw new AttemptFailed(
            'status',
            `backend answered ${status}`,
            response,
          );
        }
      } else {
        outcome = 'success';
      }
      await this.relay(response, reply, signal);
    } finally {
      const seconds = (performance.now() - started) / 1000;
      this.pool.finished(backend, outcome);
      this.metrics.backendRequests
        .labels(endpoint, String(status), backend.url)
        .inc();
      this.metrics.backendDuration
        .labels(endpoint, backend.url)
        .observe(seconds);
      info.backendStatus = status;
      info.backendDurationMs = Math.round(seconds * 1e6) / 1000;
      if (status === 'error') {
        this.logger.warn(
          { backend_url: backend.url, error: failure },
          'backend request failed',
        );
      }
    }
  }

  /**
   * Sends the backend's answer. A body with a Content-Length up to
   * MAX_BODY_BYTES is read whole first, so a backend that stalls mid-body still
   * gets a clean 504; larger or chunked bodies stream through.
   */
  private async relay(
    response: AxiosResponse<Readable>,
    reply: FastifyReply,
    signal: AbortSignal,
  ): Promise<void> {
    const stream = response.data;
    const length = Number(response.headers['content-length']);
    reply.code(response.status);
    const responseHeaders = endToEndHeaders(
      response.headers as IncomingMessage['headers'],
    );
    for (const name in responseHeaders)
      reply.header(name, responseHeaders[name]);
    if (Number.isFinite(length) && length <= this.server.maxBodyBytes) {
      const payload = await readBody(stream, signal).catch((err: unknown) => {
        throw this.classify(err, signal);
      });
      await reply.send(payload);
      return;
    }
    await reply.send(stream);
  }

  private classify(err: unknown, signal: AbortSignal): AttemptFailed {
    if (signal.aborted) {
      return new AttemptFailed('timeout', String(signal.reason));
    }
    const code = transportError(err);
    return new AttemptFailed(
      CONNECT_ERRORS.has(code) ? 'connect' : 'reset',
      code,
    );
  }
}

function readBody(stream: Readable, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const onAbort = () => stream.destroy(new Error(String(signal.reason)));
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
