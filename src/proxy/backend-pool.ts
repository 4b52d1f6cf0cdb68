import type { HttpService } from '@nestjs/axios';
import { Logger } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { Readable } from 'node:stream';
import type { Gauge } from 'prom-client';
import { firstValueFrom } from 'rxjs';
import type { backendConfig } from '../config/backend.config.js';
import type { MetricsService } from '../metrics/metrics.service.js';
import type {
  BackendClient,
  BackendClients,
} from './backend-clients.service.js';
import { Admission } from './admission.js';
import { RetryBudget } from './retry-budget.js';

export type BackendState = 'healthy' | 'unhealthy' | 'ejected';

export interface Backend {
  readonly url: string;
  /** Its keep-alive connections, held for the pool's life. */
  readonly client: BackendClient;
  /** Active health: false after UNHEALTHY_THRESHOLD failed probes in a row. */
  healthy: boolean;
  /** Passive outlier detection: ejected until this time (ms since epoch), 0 when not. */
  ejectedUntil: number;
  ejections: number;
  /** Consecutive failed requests (transport error, timeout, 5xx). */
  failures: number;
  probeFailures: number;
  probeSuccesses: number;
  lastCheck: Date | null;
  lastStatus: number | null;
  lastError: string | null;
  inflight: number;
  /** This backend's in-flight gauge, resolved once (a label lookup per request adds up). */
  readonly inflightGauge: Gauge.Internal<'backend'>;
}

/** Outcome of one request to a backend, as passive outlier detection sees it. */
export type Outcome = 'success' | 'failure';

const MAX_EJECTION_MS = 300_000;

/** What a pool needs from the application: made once by BackendPoolService. */
export interface PoolDeps {
  readonly config: ConfigType<typeof backendConfig>;
  readonly http: HttpService;
  readonly metrics: MetricsService;
  readonly clients: BackendClients;
}

/** Which model version a pool serves (none: the implicit pool of BACKEND_URL(S)). */
export interface PoolLabels {
  readonly model: string;
  readonly version: string;
  /** A shadow pool: it never answers clients. */
  readonly mirror: boolean;
}

/**
 * One set of backends (the implicit pool, or one model version): which one
 * takes the next request (least outstanding requests with two random choices,
 * or round robin), which are healthy (active probes) and which are ejected
 * (consecutive failures, Envoy's outlier model), and how many retries the
 * recent traffic affords (the retry budget).
 */
export class BackendPool {
  readonly backends: Backend[];
  /** Per-backend concurrency limits and the pool's queue (BACKEND_MAX_CONCURRENCY); undefined when off. */
  readonly admission: Admission | undefined;
  private readonly logger = new Logger(BackendPool.name);
  private readonly probeTimers = new Set<NodeJS.Timeout>();
  private readonly probeAborts = new Set<AbortController>();
  private firstProbes: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private nextRoundRobin = 0;
  private readonly budget: RetryBudget;
  private readonly config: ConfigType<typeof backendConfig>;
  private readonly http: HttpService;
  private readonly metrics: MetricsService;

  constructor(
    private readonly deps: PoolDeps,
    urls: readonly string[],
    readonly labels?: PoolLabels,
  ) {
    ({ config: this.config, http: this.http, metrics: this.metrics } = deps);
    this.budget = new RetryBudget(this.config.retryBudgetPercent);
    this.backends = urls.map((url) => ({
      url,
      client: deps.clients.acquire(url),
      healthy: true,
      ejectedUntil: 0,
      ejections: 0,
      failures: 0,
      probeFailures: 0,
      probeSuccesses: 0,
      lastCheck: null,
      lastStatus: null,
      lastError: null,
      inflight: 0,
      inflightGauge: this.metrics.backendInflight.labels(url),
    }));
    for (const backend of this.backends) this.publish(backend);
    this.admission =
      this.config.maxConcurrency === 0
        ? undefined
        : new Admission(this, this.metrics, this.config);
  }

  /** Starts the active health checks. */
  start(): void {
    this.firstProbes = Promise.all(
      this.backends.map((backend) => this.probeLoop(backend)),
    );
  }

  /** Stops the probes (shutdown: the connections stay until the server has drained). */
  stop(): void {
    this.stopped = true;
    for (const timer of this.probeTimers) clearTimeout(timer);
    for (const abort of this.probeAborts) abort.abort();
  }

  /** Retires the pool (a reload removed it): probes stop, connections close once idle. */
  close(): void {
    if (this.stopped) return;
    this.stop();
    for (const backend of this.backends) this.deps.clients.release(backend.url);
  }
  /** Resolves once every backend has been probed at least once. */
  probed(): Promise<unknown> {
    return this.firstProbes;
  }

  state(backend: Backend, now = Date.now()): BackendState {
    if (backend.ejectedUntil > now) return 'ejected';
    return backend.healthy ? 'healthy' : 'unhealthy';
  }

  available(): Backend[] {
    const now = Date.now();
    return this.backends.filter(
      (backend) => this.state(backend, now) === 'healthy',
    );
  }

  /**
   * The backend for the next attempt, never one in `tried` while another is
   * left. With no healthy backend, every backend is a candidate (panic mode):
   * a request that may fail beats one refused on stale information.
   */
  pick(tried?: ReadonlySet<Backend>): Backend | undefined {
    if (this.backends.length === 1) {
      const only = this.backends[0];
      return tried?.has(only) ? undefined : only;
    }
    return this.choose(this.candidates(tried));
  }

  /** The backends `pick` chooses from: healthy and untried, else untried (panic mode). */
  candidates(tried?: ReadonlySet<Backend>): Backend[] {
    const candidates = this.available().filter(
      (backend) => !tried?.has(backend),
    );
    if (candidates.length > 0) return candidates;
    return this.backends.filter((backend) => !tried?.has(backend));
  }

  /** One of `candidates` by the load-balancing policy. */
  choose(candidates: readonly Backend[]): Backend | undefined {
    if (candidates.length <= 1) return candidates[0];
    if (this.config.lbPolicy === 'round_robin') {
      return candidates[this.nextRoundRobin++ % candidates.length];
    }
    const a = candidates[Math.floor(Math.random() * candidates.length)];
    let b = candidates[Math.floor(Math.random() * (candidates.length - 1))];
    if (b === a) b = candidates[candidates.length - 1];
    return b.inflight < a.inflight ? b : a;
  }

  started(backend: Backend): void {
    backend.inflight++;
    backend.inflightGauge.set(backend.inflight);
  }

  finished(backend: Backend, outcome: Outcome): void {
    backend.inflight--;
    backend.inflightGauge.set(backend.inflight);
    if (outcome === 'success') {
      backend.failures = 0;
      return;
    }
    backend.failures++;
    if (backend.failures >= this.config.ejectAfterFailures) this.eject(backend);
  }

  /** Counts a client request toward the retry budget's base. */
  countRequest(): void {
    this.budget.countRequest();
  }

  /** Takes one retry from the budget; false when recent traffic affords none. */
  takeRetry(): boolean {
    if (this.budget.take()) return true;
    this.metrics.retryBudgetExhausted.inc();
    return false;
  }

  private eject(backend: Backend): void {
    const now = Date.now();
    if (backend.ejectedUntil > now) return;
    const ejected = this.backends.filter(
      (other) => other.ejectedUntil > now,
    ).length;
    const cap = Math.max(
      1,
      Math.floor((this.backends.length * this.config.maxEjectedPercent) / 100),
    );
    if (this.config.maxEjectedPercent === 0 || ejected >= cap) return;
    backend.ejections++;
    const duration = Math.min(
      this.config.ejectBaseMs * backend.ejections,
      Math.max(MAX_EJECTION_MS, this.config.ejectBaseMs),
    );
    backend.ejectedUntil = now + duration;
    backend.failures = 0;
    this.metrics.backendEjections.labels(backend.url).inc();
    this.publish(backend);
    this.logger.warn(
      {
        backend: backend.url,
        state: 'ejected',
        duration_ms: duration,
        ejections: backend.ejections,
      },
      `backend ejected after ${this.config.ejectAfterFailures} consecutive failures`,
    );
    const timer = setTimeout(() => {
      this.probeTimers.delete(timer);
      this.publish(backend);
      this.logger.log(
        { backend: backend.url, state: this.state(backend) },
        'backend ejection ended',
      );
    }, duration);
    timer.unref();
    this.probeTimers.add(timer);
  }

  private async probeLoop(backend: Backend): Promise<void> {
    await this.probe(backend);
    this.scheduleProbe(backend);
  }

  private scheduleProbe(backend: Backend): void {
    if (this.stopped) return;
    // A backend on its way up or down is probed at half the interval, so the
    // thresholds take effect sooner (Envoy's "edge" interval); ±10 % jitter
    // spreads the probes of many gateways and backends over time.
    const changing = backend.healthy
      ? backend.probeFailures > 0
      : backend.probeSuccesses > 0;
    const interval = this.config.healthCheckIntervalMs / (changing ? 2 : 1);
    const delay = interval * (0.9 + Math.random() * 0.2);
    const timer = setTimeout(() => {
      this.probeTimers.delete(timer);
      void this.probeLoop(backend);
    }, delay);
    timer.unref();
    this.probeTimers.add(timer);
  }

  private async probe(backend: Backend): Promise<void> {
    if (this.stopped) return;
    const abort = new AbortController();
    this.probeAborts.add(abort);
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
          responseType: 'stream', // see ProxyService.attempt
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
      this.probeAborts.delete(abort);
    }
    if (this.stopped) return;
    this.recordProbe(backend, status, error);
  }

  private recordProbe(
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
    if (backend.healthy !== wasHealthy) {
      this.publish(backend);
      const fields = {
        backend: backend.url,
        state: this.state(backend),
        status,
        error,
      };
      if (backend.healthy) this.logger.log(fields, 'backend healthy again');
      else this.logger.warn(fields, `backend unhealthy: ${error}`);
    }
  }

  private publish(backend: Backend): void {
    if (this.stopped) return;
    this.metrics.backendUp
      .labels(backend.url)
      .set(this.state(backend) === 'healthy' ? 1 : 0);
  }
}

/** undici's codes for what Node's sockets call ECONNRESET and a connect ETIMEDOUT. */
const UNDICI_CODES: Record<string, string> = {
  UND_ERR_SOCKET: 'ECONNRESET',
  UND_ERR_CONNECT_TIMEOUT: 'ETIMEDOUT',
};

/** A short, safe reason for a failed backend call: the error code, never a stack. */
export function transportError(err: unknown): string {
  if (
    err &&
    typeof err === 'object' &&
    'code' in err &&
    typeof err.code === 'string'
  ) {
    return UNDICI_CODES[err.code] ?? err.code;
  }
  // undici names a malformed answer by its class, not always by an llhttp code.
  if (err instanceof Error && err.name === 'HTTPParserError') {
    return 'HPE_INVALID_RESPONSE';
  }
  return err instanceof Error ? err.message.slice(0, 120) : 'unknown error';
}
