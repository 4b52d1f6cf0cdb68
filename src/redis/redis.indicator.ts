import { Injectable } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { RedisService } from './redis.service.js';

/**
 * Terminus indicator for the shared Redis: `up` when a PING answers within
 * REDIS_TIMEOUT_MS. Informational: the health controller shows it in
 * /health's details, never lets it fail /health or readiness (the gateway
 * keeps answering without Redis).
 */
@Injectable()
export class RedisHealthIndicator {
  constructor(
    private readonly redis: RedisService,
    private readonly indicators: HealthIndicatorService,
  ) {}

  /** False when no Redis is configured (REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES). */
  get configured(): boolean {
    return this.redis.client !== null;
  }

  async isHealthy(key: string) {
    const indicator = this.indicators.check(key);
    const client = this.redis.client;
    const details = { target: this.redis.target, state: client?.status };
    if (!client) return indicator.down({ state: 'not configured' });
    const started = performance.now();
    try {
      await client.ping();
      const latencyMs = Math.round((performance.now() - started) * 1000) / 1000;
      return indicator.up({ ...details, latency_ms: latencyMs });
    } catch (err) {
      this.redis.failed('ping', err);
      return indicator.down({ ...details, error: (err as Error).message });
    }
  }
}
