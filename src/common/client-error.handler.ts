import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import {
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Duplex } from 'node:stream';
import { MetricsService } from '../metrics/metrics.service.js';
import { UNMATCHED_ROUTE } from './request-context.js';
import { errorBody } from './http-exception.filter.js';
import { SECURITY_HEADERS } from './security-headers.js';

/** Node's parser errors (llhttp codes) and timeouts, as status and a short reason. */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'request headers too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request not received in time'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'chunk extensions too large'],
  HPE_INVALID_METHOD: [400, 'malformed request line'],
  HPE_INVALID_URL: [400, 'malformed request line'],
  HPE_INVALID_VERSION: [400, 'malformed request line'],
  HPE_INVALID_CONSTANT: [400, 'malformed request line'],
  HPE_INVALID_CONTENT_LENGTH: [400, 'invalid Content-Length'],
  HPE_UNEXPECTED_CONTENT_LENGTH: [
    400,
    'conflicting Content-Length or Transfer-Encoding',
  ],
  HPE_INVALID_TRANSFER_ENCODING: [400, 'invalid Transfer-Encoding'],
  HPE_INVALID_CHUNK_SIZE: [400, 'malformed chunked body'],
  HPE_INVALID_HEADER_TOKEN: [400, 'malformed header'],
};

interface SocketWithResponse extends Duplex {
  _httpMessage?: ServerResponse | null;
}

/**
 * Answers what Node rejects before Fastify sees a request (malformed request
 * line, oversized or invalid headers, conflicting framing, header/request
 * timeouts) with the gateway's JSON error, a request id (the request's own
 * when the framing broke after its headers, else a fresh one) and
 * `Connection: close`, and counts it. Replaces Fastify's default handler,
 * whose body has no request id. CONNECT gets a 405 instead of a silent close.
 */
@Injectable()
export class ClientErrorHandler implements OnModuleInit {
  private readonly logger = new Logger('ClientError');

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    const server = this.adapterHost.httpAdapter.getHttpServer() as Server;
    server.removeAllListeners('clientError');
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      this.onClientError(err, socket),
    );
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
      this.answer(socket, 405, 'CONNECT is not supported', {
        method: 'CONNECT',
      });
    });
  }

  private onClientError(
    err: NodeJS.ErrnoException,
    socket: SocketWithResponse,
  ): void {
    // The peer is gone (reset, or closed mid-request): nothing to answer, and
    // a request in flight counts as 499.
    if (
      err.code === 'ECONNRESET' ||
      err.code === 'EPIPE' ||
      err.code === 'HPE_INVALID_EOF_STATE' ||
      !socket.writable
    ) {
      socket.destroy();
      return;
    }
    const [status, reason] = CLIENT_ERRORS[err.code ?? ''] ?? [
      400,
      'malformed request',
    ];
    const inFlight = socket._httpMessage;
    if (inFlight) {
      // Headers were parsed and a request is being served: if nothing was
      // written yet we may still answer; the request's own metrics/log count it.
      if (inFlight.headersSent) {
        socket.destroy();
        return;
      }
      const request = inFlight.req as IncomingMessage | undefined;
      const info = request ? (request.gateway ??= {}) : {};
      info.cutStatus = status;
      this.answer(socket, status, reason, {
        code: err.code,
        requestId: info.requestId,
        count: false,
      });
      return;
    }
    this.answer(socket, status, reason, { code: err.code });
  }

  private answer(
    socket: Duplex,
    status: number,
    reason: string,
    {
      method = 'OTHER',
      code,
      requestId = randomUUID(),
      count = true,
    }: { method?: string; code?: string; requestId?: string; count?: boolean },
  ): void {
    const body = JSON.stringify(errorBody(status, reason, requestId));
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n`;
    head += 'content-type: application/json; charset=utf-8\r\n';
    head += `content-length: ${Buffer.byteLength(body)}\r\n`;
    head += `x-request-id: ${requestId}\r\n`;
    if (status === 405) head += 'allow: GET, HEAD, POST\r\n';
    for (const name in SECURITY_HEADERS)
      head += `${name}: ${SECURITY_HEADERS[name]}\r\n`;
    head += 'connection: close\r\n\r\n';
    if (count) {
      this.metrics.httpRequests
        .labels(method, UNMATCHED_ROUTE, String(status))
        .inc();
    }
    this.logger.warn(
      { request_id: requestId, status, error: code ?? reason },
      `client error: ${reason}`,
    );
    // Whatever the client still sends is not read: the connection closes
    // once the answer is flushed (or after 1 s for a client that never reads).
    const cut = setTimeout(() => socket.destroy(), 1000);
    cut.unref();
    socket.end(head + body, () => {
      clearTimeout(cut);
      socket.destroy();
    });
  }
}
