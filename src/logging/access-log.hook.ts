import { Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import {
  finalStatus,
  pathOf,
  UNMATCHED_ROUTE,
} from '../common/request-context.js';

const QUIET_PATHS = /^\/(health(\/|\?|$)|metrics(\?|$))/;

/**
 * One access-log line per request, written when the response ends, through the
 * request's pino child logger (so it carries the request id). It is a Fastify
 * hook rather than pino-http's auto logging because only Fastify knows the
 * matched route and the bytes it sent.
 */
@Injectable()
export class AccessLogHook implements OnApplicationBootstrap {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onApplicationBootstrap(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    // On the response's close, not Fastify's onResponse: that one never fires
    // for a client that left before the answer.
    fastify.addHook('onRequest', (request, reply, done) => {
      reply.raw.once('close', () => this.log(request, reply));
      done();
    });
  }

  private log(request: FastifyRequest, reply: FastifyReply): void {
    // pino-http's per-request child (raw.log is Fastify's no-op logger under middie).
    const logger = (request.raw as { allLogs?: Logger[] }).allLogs?.at(-1);
    if (!logger) return;
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
        method: request.method,
        path: pathOf(request.url),
        route: request.routeOptions.url ?? UNMATCHED_ROUTE,
        status,
        duration_ms: Math.round(reply.elapsedTime * 1000) / 1000,
        bytes: length === undefined ? undefined : Number(length),
        backend: info?.backend,
        backend_status: info?.backendStatus,
        backend_duration_ms: info?.backendDurationMs,
        key_id: info?.keyId,
        cache: info?.cache,
      },
      finished
        ? 'request completed'
        : status === 499
          ? 'request aborted by client'
          : 'request rejected',
    );
  }
}
