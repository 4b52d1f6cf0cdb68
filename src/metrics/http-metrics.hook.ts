import { Injectable, OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UNMATCHED_ROUTE } from '../common/request-context.js';
import { MetricsService } from './metrics.service.js';

const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
]);

/**
 * Counts every response, 404s and body-limit errors included, from a Fastify
 * `onResponse` hook: an interceptor would only see matched routes. The
 * endpoint label is the route pattern, never the raw path.
 */
@Injectable()
export class HttpMetricsHook implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onResponse', (request, reply, done) => {
      this.record(request, reply);
      done();
    });
  }

  private record(request: FastifyRequest, reply: FastifyReply): void {
    const method = KNOWN_METHODS.has(request.method) ? request.method : 'OTHER';
    const endpoint = request.routeOptions.url ?? UNMATCHED_ROUTE;
    // A client that went away before the answer was written: nginx's 499.
    const status = reply.raw.writableFinished
      ? String(reply.statusCode)
      : '499';
    this.metrics.httpRequests.labels(method, endpoint, status).inc();
    this.metrics.httpDuration
      .labels(method, endpoint)
      .observe(reply.elapsedTime / 1000);
  }
}
