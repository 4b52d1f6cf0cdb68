import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { BackendPoolService } from './backend-pool.service.js';

export interface BackendReport {
  url: string;
  state: string;
  last_check: string | null;
  last_status: number | null;
  last_error: string | null;
  consecutive_failures: number;
  in_flight: number;
}

/** Terminus indicator over the pool: up while at least one backend takes traffic. */
@Injectable()
export class BackendHealthIndicator {
  constructor(
    private readonly pool: BackendPoolService,
    private readonly indicators: HealthIndicatorService,
  ) {}

  async isHealthy(key: string) {
    await this.pool.probed();
    const indicator = this.indicators.check(key);
    const now = Date.now();
    const backends: BackendReport[] = this.pool.backends.map((backend) => ({
      url: backend.url,
      state: this.pool.state(backend, now),
      last_check: backend.lastCheck?.toISOString() ?? null,
      last_status: backend.lastStatus,
      last_error: backend.lastError,
      consecutive_failures: Math.max(backend.failures, backend.probeFailures),
      in_flight: backend.inflight,
    }));
    const healthy = backends.filter(
      (backend) => backend.state === 'healthy',
    ).length;
    const details = { healthy, total: backends.length, backends };
    return healthy > 0 ? indicator.up(details) : indicator.down(details);
  }
}
