import type { HttpService } from '@nestjs/axios';
import { Logger } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { backendConfig } from '../config/backend.config.js';
import type { MetricsService } from '../metrics/metrics.service.js';
import { Admission } from './admission.js';
import {
  type Backend,
  type BackendState,
  newBackend,
  type Outcome,
} from './backend.js';
import type { BackendClients } from './backend-clients.service.js';
import { BackendProber } from './backend-prober.js';
import { PoolMetrics } from './pool-metrics.js';
import { RetryBudget } from './retry-budget.js';

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
 * or round robin), which are healthy (BackendProber) and which are ejected
 * (consecutive failures, Envoy's outlier model), how many retries the recent
 * traffic affords (the retry budget), and its admission control.
 */
export class BackendPool {
  readonly backends: Backend[];
  /** Per-backend concurrency limits and the pool's queue (BACKEND_MAX_CONCURRENCY); undefined when off. */
  readonly admission: Admission | undefined;
  readonly metrics: PoolMetrics;
  private readonly logger = new Logger(BackendPool.name);
  private readonly prober: BackendProber;
  private readonly ejectionTimers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private nextRoundRobin = 0;
  private readonly budget: RetryBudget;
  private readonly config: ConfigType<typeof backendConfig>;

  constructor(
    private readonly deps: PoolDeps,
    urls: readonly string[],
    readonly labels?: PoolLabels,
  ) {
    this.config = deps.config;
    this.metrics = new PoolMetrics(
      deps.metrics,
      labels ? `${labels.model}/${labels.version}` : 'default',
    );
    this.budget = new RetryBudget(this.config.retryBudgetPercent);
    this.backends = urls.map((url) =>
      newBackend(url, deps.clients.acquire(url), this.metrics.inflight(url)),
    );
    for (const backend of this.backends) this.publish(backend);
    this.admission =
      this.config.maxConcurrency === 0
        ? undefined
        : new Admission(this, this.metrics, this.config);
    this.prober = new BackendProber(
      this.backends,
      deps.http,
      this.config,
      (backend) => {
        this.publish(backend);
        return this.state(backend);
      },
    );
  }

  /** Starts the active health checks. */
  start(): void {
    this.prober.start();
  }

  /** Stops the probes (shutdown: the connections stay until the server has drained). */
  stop(): void {
    this.stopped = true;
    this.prober.stop();
    for (const timer of this.ejectionTimers) clearTimeout(timer);
  }

  /**
   * Retires the pool (a reload removed it): probes stop, connections close
   * once idle, its series go, with those of `retired` (URLs no pool uses).
   */
  close(retired: ReadonlySet<string>): void {
    if (this.stopped) return;
    this.stop();
    for (const backend of this.backends) this.deps.clients.release(backend.url);
    this.metrics.remove(retired);
  }

  /** Resolves once every backend has been probed at least once. */
  probed(): Promise<unknown> {
    return this.prober.probed();
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
    this.metrics.retryBudgetExhausted();
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
    this.metrics.ejected(backend.url);
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
      this.ejectionTimers.delete(timer);
      this.publish(backend);
      this.logger.log(
        { backend: backend.url, state: this.state(backend) },
        'backend ejection ended',
      );
    }, duration);
    timer.unref();
    this.ejectionTimers.add(timer);
  }

  private publish(backend: Backend): void {
    if (this.stopped) return;
    this.metrics.up(backend.url).set(this.state(backend) === 'healthy' ? 1 : 0);
  }
}
