import { Injectable, OnModuleInit } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { PinoLogger } from 'nestjs-pino';
import {
  finalStatus,
  pathOf,
  UNMATCHED_ROUTE,
} from '../common/request-context.js';
import { ResponseClosedHook } from '../common/response-closed.hook.js';

const QUIET_PATHS = /^\/(health(\/|\?|$)|metrics(\?|$))/;

/**
 * One access-log line per request, written when the response ends, from a
 * plain object through the application's one pino logger (no child logger per
 * request: the request id is a field of the line). It is a Fastify hook
 * rather than pino-http's auto logging because only Fastify knows the matched
 * route and the bytes it sent.
 */
@Injectable()
export class AccessLogHook implements OnModuleInit {
  constructor(private readonly closed: ResponseClosedHook) {}

  onModuleInit(): void {
    this.closed.add((request, reply) => this.log(request, reply));
  }

  private log(request: FastifyRequest, reply: FastifyReply): void {
    const logger = PinoLogger.root;
    const finished = reply.raw.writableFinished;
    const status = finalStatus(request.raw, reply.raw);
    const level =
      status >= 500
        ? 'error'
        : QUIET_PATHS.test(request.url)
          ? 'debug'
          : status >= 400
            ? 'warn'
            : 'info';
    if (!logger.isLevelEnabled(level)) return;
    const info = request.raw.gateway;
    const length = reply.getHeader('content-length');
    logger[level](
      {
        request_id: request.id,
        method: request.method,
        path: pathOf(request.url),
        route: request.routeOptions.url ?? UNMATCHED_ROUTE,
        status,
        duration_ms: Math.round(reply.elapsedTime * 1000) / 1000,
        bytes: length === undefined ? info?.bytes : Number(length),
        model: info?.model,
        version: info?.version,
        backend: info?.backend,
        backend_status: info?.backendStatus,
        backend_duration_ms: info?.backendDurationMs,
        key_id: info?.keyId,
        cache: info?.cache,
        trace_id: info?.trace?.traceId,
        span_id: info?.trace?.spanId,
      },
      finished
        ? 'request completed'
        : status === 499
          ? 'request aborted by client'
          : 'request rejected',
    );
  }
}
