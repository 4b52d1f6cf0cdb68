import { Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PinoLogger } from 'nestjs-pino';
import {
  isQuietPath,
  pathOf,
  UNMATCHED_ROUTE,
} from '../common/request-labels.js';
import type { RequestState } from '../common/request-state.js';

/**
 * One access-log line per request, written when the response closes, from a
 * plain object through the application's one pino logger (no child logger
 * per request: the request id is a field of the line). Not pino-http's auto
 * logging: only Fastify knows the matched route and the bytes it sent.
 */
@Injectable()
export class AccessLog {
  write(
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
    status: number,
  ): void {
    const logger = PinoLogger.root;
    const level =
      status >= 500
        ? 'error'
        : isQuietPath(request.url)
          ? 'debug'
          : status >= 400
            ? 'warn'
            : 'info';
    if (!logger.isLevelEnabled(level)) return;
    const length = reply.getHeader('content-length');
    logger[level](
      {
        request_id: request.id,
        method: request.method,
        path: pathOf(request.url),
        route: request.routeOptions.url ?? UNMATCHED_ROUTE,
        status,
        duration_ms: Math.round(reply.elapsedTime * 1000) / 1000,
        bytes: length === undefined ? state.bytes : Number(length),
        model: state.model,
        version: state.version,
        backend: state.backend,
        backend_status: state.backendStatus,
        backend_duration_ms: state.backendDurationMs,
        key_id: state.keyId,
        tenant: state.tenant,
        cache: state.cache,
        batch_id: state.batchId,
        batch_size: state.batchSize,
        trace_id: state.trace?.traceId,
        span_id: state.trace?.spanId,
      },
      reply.raw.writableFinished
        ? 'request completed'
        : status === 499
          ? 'request aborted by client'
          : 'request rejected',
    );
  }
}
