import type { HttpService } from '@nestjs/axios';
import { Logger } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { Readable } from 'node:stream';
import { firstValueFrom } from 'rxjs';
import type { backendConfig } from '../config/backend.config.js';
import type { Backend } from './backend.js';
import { transportError } from './backend-errors.js';

/**
 * Active health checks of one pool's backends: a GET of BACKEND_HEALTH_PATH
 * every HEALTH_CHECK_INTERVAL_MS through @nestjs/axios (the probes' cost per
 * call does not matter), UNHEALTHY_THRESHOLD failures in a row to go down,
 * HEALTHY_THRESHOLD successes to come back. The first probe decides at once.
 */
export class BackendProber {
  private readonly logger = new Logger('BackendPool');
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly aborts = new Set<AbortController>();
  private firstProbes: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly backends: readonly Backend[],
    private readonly http: HttpService,
    private readonly config: ConfigType<typeof backendConfig>,
    /** A backend went up or down: its pool publishes the new state. */
    private readonly changed: (backend: Backend) => string,
  ) {}

  start(): void {
    this.firstProbes = Promise.all(
      this.backends.map((backend) => this.loop(backend)),
    );
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    for (const abort of this.aborts) abort.abort();
  }

  /** Resolves once every backend has been probed at least once. */
  probed(): Promise<unknown> {
    return this.firstProbes;
  }

  private async loop(backend: Backend): Promise<void> {
    await this.probe(backend);
    this.schedule(backend);
  }

  private schedule(backend: Backend): void {
    if (this.stopped) return;
    // A backend on its way up or down is probed at half the interval, so the
    // thresholds take effect sooner (Envoy's "edge" interval); ±10 % jitter
    // spreads the probes of many gateways and backends over time.
    const changing = backend.healthy
      ? backend.probeFailures > 0
      : backend.probeSuccesses > 0;
    const interval = this.config.healthCheckIntervalMs / (changing ? 2 : 1);
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        void this.loop(backend);
      },
      interval * (0.9 + Math.random() * 0.2),
    );
    timer.unref();
    this.timers.add(timer);
  }

  private async probe(backend: Backend): Promise<void> {
    if (this.stopped) return;
    const abort = new AbortController();
    this.aborts.add(abort);
    const timer = setTimeout(
      () => abort.abort(),
      this.config.healthCheckTimeoutMs,
    );
    let status: number | null = null;
    let error: string | null = null;
    try {
      const response = await firstValueFrom(
        this.http.get<Readable>(this.config.healthPath, {
          baseURL: backend.url,
          signal: abort.signal,
          responseType: 'stream',
          headers: { 'user-agent': 'api-gateway-health-check' },
        }),
      );
      status = response.status;
      response.data.resume(); // the body is not needed; drain it to free the socket
      if (status < 200 || status >= 300)
        error = `health check answered ${status}`;
    } catch (err) {
      error = abort.signal.aborted
        ? `health check timed out after ${this.config.healthCheckTimeoutMs} ms`
        : transportError(err);
    } finally {
      clearTimeout(timer);
      this.aborts.delete(abort);
    }
    if (this.stopped) return;
    this.record(backend, status, error);
  }

  private record(
    backend: Backend,
    status: number | null,
    error: string | null,
  ): void {
    const first = backend.lastCheck === null;
    backend.lastCheck = new Date();
    backend.lastStatus = status;
    backend.lastError = error;
    const wasHealthy = backend.healthy;
    if (error === null) {
      backend.probeFailures = 0;
      backend.probeSuccesses++;
      if (
        !backend.healthy &&
        (first || backend.probeSuccesses >= this.config.healthyThreshold)
      ) {
        backend.healthy = true;
        // Seen down and back up by the probes (a restart): the passive ejection
        // that the outage caused is over too.
        backend.ejectedUntil = 0;
        backend.failures = 0;
      }
    } else {
      backend.probeSuccesses = 0;
      backend.probeFailures++;
      // The first probe has no history to outvote: it decides at once.
      if (
        backend.healthy &&
        (first || backend.probeFailures >= this.config.unhealthyThreshold)
      ) {
        backend.healthy = false;
      }
    }
    if (backend.healthy === wasHealthy) return;
    const fields = {
      backend: backend.url,
      state: this.changed(backend),
      status,
      error,
    };
    if (backend.healthy) this.logger.log(fields, 'backend healthy again');
    else this.logger.warn(fields, `backend unhealthy: ${error}`);
  }
}
