import { Injectable } from '@nestjs/common';
import {
  Counter,
  CounterConfiguration,
  Gauge,
  GaugeConfiguration,
  Histogram,
  HistogramConfiguration,
  register,
} from 'prom-client';

const HTTP_BUCKETS = [
  0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];
const BACKEND_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30,
];
const QUEUE_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/**
 * The gateway's own metrics on prom-client's default registry (the one
 * PrometheusModule serves). Names and label names are the Go gateway's, so
 * its dashboards and alerts keep working. Every label value is bounded: routes,
 * configured backends, status codes. `pool` names a backend pool: `default`
 * (BACKEND_URL(S)) or `model/version` (ROUTES_FILE); a reload removes the
 * series of the pools and backends it retired.
 */
@Injectable()
export class MetricsService {
  readonly httpRequests = counter({
    name: 'gateway_http_requests_total',
    help: 'HTTP requests answered by the gateway',
    labelNames: ['method', 'endpoint', 'status'],
  });
  readonly httpDuration = histogram({
    name: 'gateway_http_request_duration_seconds',
    help: 'Time from request arrival to response end',
    labelNames: ['method', 'endpoint'],
    buckets: HTTP_BUCKETS,
  });
  readonly backendRequests = counter({
    name: 'gateway_backend_requests_total',
    help: 'Requests sent to a backend, by backend status ("error" on a transport failure)',
    labelNames: ['endpoint', 'status', 'backend'],
  });
  readonly backendDuration = histogram({
    name: 'gateway_backend_request_duration_seconds',
    help: 'Backend round trip, first byte sent to last byte received',
    labelNames: ['endpoint', 'backend'],
    buckets: BACKEND_BUCKETS,
  });
  readonly backendUp = gauge({
    name: 'gateway_backend_up',
    help: '1 when the backend takes traffic (healthy and not ejected)',
    labelNames: ['pool', 'backend'],
  });
  readonly backendInflight = gauge({
    name: 'gateway_backend_inflight',
    help: 'Requests in flight to the backend',
    labelNames: ['pool', 'backend'],
  });
  readonly backendEjections = counter({
    name: 'gateway_backend_ejections_total',
    help: 'Times the backend was ejected by passive outlier detection',
    labelNames: ['backend'],
  });
  readonly retries = counter({
    name: 'gateway_retries_total',
    help: 'Retries of a request on another backend, by reason',
    labelNames: ['endpoint', 'reason'],
  });
  readonly modelRequests = counter({
    name: 'gateway_model_requests_total',
    help: 'Requests routed to a model version (ROUTES_FILE), by final status',
    labelNames: ['model', 'version', 'status'],
  });
  readonly modelDuration = histogram({
    name: 'gateway_model_request_duration_seconds',
    help: 'Time from request arrival to response end, per model version',
    labelNames: ['model', 'version'],
    buckets: HTTP_BUCKETS,
  });
  readonly mirrorRequests = counter({
    name: 'gateway_mirror_requests_total',
    help: 'Shadow copies to a model mirror: ok, error, or skipped (MIRROR_MAX_INFLIGHT reached)',
    labelNames: ['model', 'version', 'result'],
  });
  readonly mirrorMismatches = counter({
    name: 'gateway_mirror_mismatch_total',
    help: 'Shadow answers that differed from the client answer on the compared fields',
    labelNames: ['model', 'version'],
  });
  readonly retryBudgetExhausted = counter({
    name: 'gateway_retry_budget_exhausted_total',
    help: 'Retries not made because the retry budget was spent',
  });
  readonly redisUp = gauge({
    name: 'gateway_redis_up',
    help: '1 while the shared Redis connection is ready, 0 when it is down or no Redis is configured',
  });
  readonly redisErrors = counter({
    name: 'gateway_redis_errors_total',
    help: 'Redis calls that failed or timed out, by operation',
    labelNames: ['op'],
  });
  readonly rateLimitRedisFallback = counter({
    name: 'gateway_rate_limit_redis_fallback_total',
    help: 'Requests let through unlimited because Redis could not answer (RATE_LIMIT_ON_REDIS_ERROR=allow)',
  });
  readonly cacheRequests = counter({
    name: 'gateway_cache_requests_total',
    help: 'Requests seen by the response cache, by result (hit, miss, bypass, error)',
    labelNames: ['endpoint', 'result'],
  });
  readonly cacheEntries = gauge({
    name: 'gateway_cache_entries',
    help: 'Entries in the in-memory response cache',
  });
  readonly queueDepth = gauge({
    name: 'gateway_queue_depth',
    help: 'Requests waiting for a backend slot (BACKEND_MAX_CONCURRENCY), per pool',
    labelNames: ['pool'],
  });
  readonly queueWait = histogram({
    name: 'gateway_queue_wait_seconds',
    help: 'Time a request waited for a backend slot, for those that had to wait',
    buckets: QUEUE_BUCKETS,
  });
  readonly shed = counter({
    name: 'gateway_shed_total',
    help: 'Requests refused with 503 overloaded, by reason (queue_full, displaced, queue_timeout, deadline, body_budget) and priority class (empty: refused before its class was known)',
    labelNames: ['reason', 'priority'],
  });
  readonly tenantRequests = counter({
    name: 'gateway_tenant_requests_total',
    help: 'Requests by tenant (TENANTS_FILE: names from the file, else default) and final status',
    labelNames: ['tenant', 'status'],
  });
  readonly backendConcurrencyLimit = gauge({
    name: 'gateway_backend_concurrency_limit',
    help: 'Requests the backend may have in flight (fixed, or learned with BACKEND_MAX_CONCURRENCY=auto)',
    labelNames: ['pool', 'backend'],
  });
}

// Each app instance registers anew: an earlier instance in this process (tests,
// watch mode) would otherwise make prom-client throw "already registered".
export function counter<L extends string>(config: CounterConfiguration<L>) {
  register.removeSingleMetric(config.name);
  return new Counter(config);
}

export function gauge<L extends string>(config: GaugeConfiguration<L>) {
  register.removeSingleMetric(config.name);
  return new Gauge(config);
}

export function histogram<L extends string>(config: HistogramConfiguration<L>) {
  register.removeSingleMetric(config.name);
  return new Histogram(config);
}
