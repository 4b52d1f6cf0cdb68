import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { BackendPoolService } from './backend-pool.service.js';

export interface BackendReport {
  url: string;
  /** With a routes file: the model and version the backend serves. */
  model?: string;
  version?: string;
  /** A shadow backend: listed, but it does not make the gateway healthy. */
  mirror?: boolean;
  state: string;
  last_check: string | null;
  last_status: number | null;
  last_error: string | null;
  consecutive_failures: number;
  in_flight: number;
}

/** Terminus indicator over the pools: up while at least one backend takes traffic. */
@Injectable()
export class BackendHealthIndicator {
  constructor(
    private readonly pools: BackendPoolService,
    private readonly indicators: HealthIndicatorService,
  ) {}

  /** Every backend's state, once the first probes have decided. */
  async reports(): Promise<BackendReport[]> {
    await this.pools.probed();
    const now = Date.now();
    return this.pools.all().flatMap((pool) =>
      pool.backends.map((backend) => ({
        url: backend.url,
        model: pool.labels?.model,
        version: pool.labels?.version,
        mirror: pool.labels?.mirror || undefined,
        state: pool.state(backend, now),
        last_check: backend.lastCheck?.toISOString() ?? null,
        last_status: backend.lastStatus,
        last_error: backend.lastError,
        consecutive_failures: Math.max(backend.failures, backend.probeFailures),
        in_flight: backend.inflight,
      })),
    );
  }

  /**
   * A summary (`healthy`, `total`), not the list: /health shows the list once.
   * Pass the reports the caller shows so both come from the same moment.
   * Shadow backends are left out: they never answer a client.
   */
  async isHealthy(key: string, reports?: BackendReport[]) {
    const backends = (reports ?? (await this.reports())).filter(
      (b) => !b.mirror,
    );
    const indicator = this.indicators.check(key);
    const healthy = backends.filter((b) => b.state === 'healthy').length;
    const summary = { healthy, total: backends.length };
    return healthy > 0 ? indicator.up(summary) : indicator.down(summary);
  }
}
