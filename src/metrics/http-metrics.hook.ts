import { Injectable, OnModuleInit } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  finalStatus,
  HTTP_METHODS,
  UNMATCHED_ROUTE,
} from '../common/request-context.js';
import { ResponseClosedHook } from '../common/response-closed.hook.js';
import { MetricsService } from './metrics.service.js';

const KNOWN_METHODS = new Set<string>(HTTP_METHODS);

/**
 * Counts every exchange, 404s and body-limit errors included, when its
 * response closes: an interceptor would only see matched routes, and
 * Fastify's `onResponse` never fires for a client that left before the
 * answer (counted here as 499). The endpoint label is the route pattern,
 * never the raw path.
 */
@Injectable()
export class HttpMetricsHook implements OnModuleInit {
  constructor(
    private readonly closed: ResponseClosedHook,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    this.closed.add((request, reply) => this.record(request, reply));
  }

  private record(request: FastifyRequest, reply: FastifyReply): void {
    const method = KNOWN_METHODS.has(request.method) ? request.method : 'OTHER';
    const endpoint = request.routeOptions.url ?? UNMATCHED_ROUTE;
    const status = String(finalStatus(request.raw, reply.raw));
    this.metrics.httpRequests.labels(method, endpoint, status).inc();
    this.metrics.httpDuration
      .labels(method, endpoint)
      .observe(reply.elapsedTime / 1000);
  }
}
