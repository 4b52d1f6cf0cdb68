import type { Gauge } from 'prom-client';
import type { MetricsService } from '../metrics/metrics.service.js';

interface CallSeries {
  record(seconds: number): void;
}

/**
 * The metric children of one backend pool, resolved once (a label lookup
 * per request adds up), and removed with the pool when a routes reload
 * retires it. Gauges carry the pool's name (`default`, or `model/version`);
 * the Go gateway's backend metrics keep their labels.
 */
export class PoolMetrics {
  readonly queueDepth: Gauge.Internal<string>;
  private readonly calls = new Map<string, CallSeries>();
  private readonly urls = new Set<string>();

  constructor(
    private readonly metrics: MetricsService,
    readonly pool: string,
  ) {
    this.queueDepth = metrics.queueDepth.labels(pool);
  }

  up(url: string): Gauge.Internal<string> {
    this.urls.add(url);
    return this.metrics.backendUp.labels(this.pool, url);
  }

  inflight(url: string): Gauge.Internal<string> {
    this.urls.add(url);
    return this.metrics.backendInflight.labels(this.pool, url);
  }

  concurrencyLimit(url: string): Gauge.Internal<string> {
    return this.metrics.backendConcurrencyLimit.labels(this.pool, url);
  }

  ejected(url: string): void {
    this.metrics.backendEjections.labels(url).inc();
  }

  queueWait(seconds: number): void {
    this.metrics.queueWait.observe(seconds);
  }

  shed(reason: string, priority: string): void {
    this.metrics.shed.labels(reason, priority).inc();
  }

  retryBudgetExhausted(): void {
    this.metrics.retryBudgetExhausted.inc();
  }

  retry(endpoint: string, reason: string): void {
    this.metrics.retries.labels(endpoint, reason).inc();
  }

  /** The Go gateway's backend request metrics for one (endpoint, status, backend). */
  call(endpoint: string, status: number | 'error', url: string): CallSeries {
    const key = `${endpoint} ${status} ${url}`;
    let series = this.calls.get(key);
    if (!series) {
      const requests = this.metrics.backendRequests.labels(
        endpoint,
        String(status),
        url,
      );
      const duration = this.metrics.backendDuration.labels(endpoint, url);
      series = {
        record: (seconds: number) => {
          requests.inc();
          duration.observe(seconds);
        },
      };
      this.calls.set(key, series);
    }
    return series;
  }

  /**
   * Deletes this pool's series, and the per-backend ones of `retired`: the
   * URLs no pool left in use has.
   */
  remove(retired: ReadonlySet<string>): void {
    const { metrics, pool } = this;
    metrics.queueDepth.remove(pool);
    for (const url of this.urls) {
      metrics.backendUp.remove(pool, url);
      metrics.backendInflight.remove(pool, url);
      metrics.backendConcurrencyLimit.remove(pool, url);
      if (!retired.has(url)) continue;
      metrics.backendEjections.remove(url);
    }
    for (const key of this.calls.keys()) {
      const [endpoint, status, url] = key.split(' ');
      if (!retired.has(url)) continue;
      metrics.backendRequests.remove(endpoint, status, url);
      metrics.backendDuration.remove(endpoint, url);
    }
    this.calls.clear();
  }
}
