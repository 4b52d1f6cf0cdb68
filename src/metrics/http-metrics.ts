import { Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { methodLabel, UNMATCHED_ROUTE } from '../common/request-labels.js';
import { MetricsService } from './metrics.service.js';

/**
 * The Go gateway's request metrics: every exchange, 404s, body-limit errors
 * and client errors included, counted when its response closes (an
 * interceptor would see matched routes only, Fastify's `onResponse` never
 * fires for a client that left: 499 here). The endpoint label is the route
 * pattern, never the raw path.
 */
@Injectable()
export class HttpMetrics {
  constructor(private readonly metrics: MetricsService) {}

  record(
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    tenant: string | undefined,
  ): void {
    const method = methodLabel(request.method);
    const endpoint = request.routeOptions.url ?? UNMATCHED_ROUTE;
    this.metrics.httpRequests.labels(method, endpoint, String(status)).inc();
    if (tenant !== undefined)
      this.metrics.tenantRequests.labels(tenant, String(status)).inc();
    this.metrics.httpDuration
      .labels(method, endpoint)
      .observe(reply.elapsedTime / 1000);
  }

  /** A request refused with 503 overloaded before any backend work (`reason` a label). */
  readonly countShed = (reason: string): void => {
    this.metrics.shed.labels(reason, '').inc();
  };

  /** An answer made below Fastify (ClientErrorHandler): no route, no duration. */
  readonly countUnrouted = (method: string, status: number): void => {
    this.metrics.httpRequests
      .labels(method, UNMATCHED_ROUTE, String(status))
      .inc();
  };
}
