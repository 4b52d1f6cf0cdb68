import { OverloadedException } from '../common/unavailable.exception.js';
import type { ConfigType } from '@nestjs/config';
import { backendConfig } from '../config/backend.config.js';
import { AdaptiveLimit } from './adaptive-limit.js';
import type { Backend } from './backend.js';
import { BackendSlot } from './backend-slot.js';
import type { PoolMetrics } from './pool-metrics.js';

export type ShedReason = 'queue_full' | 'queue_timeout' | 'deadline';

/**
 * The request waiting for a slot, as admission sees it: `cut` once the client
 * left or its deadline passed, `onCut` called when that happens (set while it
 * waits in the queue).
 */
export interface Waiting {
  readonly cut: unknown;
  onCut: (() => void) | undefined;
}

/** The pool admission works for: its candidates and its balancing policy. */
export interface AdmittingPool {
  readonly backends: readonly Backend[];
  candidates(tried?: ReadonlySet<Backend>): Backend[];
  choose(candidates: readonly Backend[]): Backend | undefined;
}

interface Waiter {
  tried: ReadonlySet<Backend> | undefined;
  waiting: Waiting;
  enqueuedAt: number;
  resolve: (backend: Backend | undefined) => void;
  reject: (err: OverloadedException) => void;
  timer: NodeJS.Timeout;
  onAbort: () => void;
}

/**
 * Admission control in front of the backends (BACKEND_MAX_CONCURRENCY): each
 * backend takes at most its limit (fixed, or learned by `AdaptiveLimit`); a
 * request that finds every eligible backend full waits in one FIFO queue for
 * the pool, and is refused at once with 503 `overloaded` when the queue is
 * full, when it waited QUEUE_TIMEOUT_MS, or when the backends' recent latency
 * says it cannot finish within its deadline (BACKEND_TIMEOUT_MS). Retries go
 * through here too, so they never exceed a limit.
 *
 * One per pool (each model version has its own queue). Off (0, the default)
 * a pool has none and the proxy's only cost is that `undefined` check.
 */
export class Admission {
  private readonly slots = new Map<Backend, BackendSlot>();
  private readonly queue: Waiter[] = [];
  private readonly retryAfterSeconds: number;

  constructor(
    private readonly pool: AdmittingPool,
    private readonly metrics: PoolMetrics,
    private readonly config: ConfigType<typeof backendConfig>,
  ) {
    metrics.queueDepth.set(0);
    this.retryAfterSeconds = Math.max(
      1,
      Math.ceil(config.queueTimeoutMs / 1000),
    );
    for (const backend of pool.backends) {
      const adaptive =
        config.maxConcurrency === 'auto'
          ? new AdaptiveLimit({
              minLimit: config.adaptiveMinConcurrency,
              maxLimit: config.adaptiveMaxConcurrency,
            })
          : undefined;
      this.slots.set(
        backend,
        new BackendSlot(
          config.maxConcurrency === 'auto' ? 0 : config.maxConcurrency,
          adaptive,
          metrics.concurrencyLimit(backend.url),
        ),
      );
    }
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.queue.length;
  }

  /** The current limit of a backend (fixed or learned). */
  limit(backend: Backend): number {
    return this.slot(backend).limit;
  }

  /**
   * A backend with a slot taken for the caller, never one in `tried` while
   * another is left; undefined when none is left or the caller was cut while
   * waiting. Throws `OverloadedException` when shed. `deadline` is when the
   * request's BACKEND_TIMEOUT_MS ends (performance.now()).
   */
  acquire(
    tried: ReadonlySet<Backend> | undefined,
    waiting: Waiting,
    deadline: number,
  ): Promise<Backend | undefined> {
    const candidates = this.pool.candidates(tried);
    if (candidates.length === 0) return Promise.resolve(undefined);
    const free = this.withRoom(candidates);
    if (free.length > 0) return Promise.resolve(this.take(this.choose(free)));
    return this.wait(candidates, tried, waiting, deadline);
  }

  /**
   * Gives a slot back. `latencyMs` (an answer, or a timeout: `timedOut`)
   * feeds the backend's latency and its adaptive limit; undefined (a fast
   * failure, or a slot unused) does not.
   */
  release(backend: Backend, latencyMs?: number, timedOut = false): void {
    this.slot(backend).release(latencyMs, timedOut);
    if (this.queue.length > 0) this.drain();
  }

  private wait(
    candidates: Backend[],
    tried: ReadonlySet<Backend> | undefined,
    waiting: Waiting,
    deadline: number,
  ): Promise<Backend | undefined> {
    if (waiting.cut) return Promise.resolve(undefined);
    if (this.queue.length >= this.config.queueMax) {
      return Promise.reject(
        this.shed('queue_full', `the queue is full (${this.config.queueMax})`),
      );
    }
    const now = performance.now();
    // What an answer of the fastest candidate may take, once it has a slot.
    // At least 1 ms so the deadline shed below fires before the overall timeout.
    const latency = Math.max(1, this.fastest(candidates));
    const timeLeft = deadline - now - latency;
    if (timeLeft <= 0 || this.longestWait(candidates) > timeLeft) {
      return Promise.reject(
        this.shed(
          'deadline',
          `no backend can answer within ${this.config.timeoutMs} ms`,
        ),
      );
    }
    const byDeadline = timeLeft < this.config.queueTimeoutMs;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        tried,
        waiting,
        enqueuedAt: now,
        resolve,
        reject,
        timer: setTimeout(
          () =>
            this.leave(waiter, (w) =>
              w.reject(
                byDeadline
                  ? this.shed(
                      'deadline',
                      `no backend can answer within ${this.config.timeoutMs} ms`,
                    )
                  : this.shed(
                      'queue_timeout',
                      `no backend was free within ${this.config.queueTimeoutMs} ms`,
                    ),
              ),
            ),
          byDeadline ? timeLeft : this.config.queueTimeoutMs,
        ),
        onAbort: () => this.leave(waiter, (w) => w.resolve(undefined)),
      };
      waiting.onCut = waiter.onAbort;
      this.queue.push(waiter);
      this.metrics.queueDepth.set(this.queue.length);
    });
  }

  /** Hands freed slots to waiters, first come first served. */
  private drain(): void {
    for (let i = 0; i < this.queue.length;) {
      const waiter = this.queue[i];
      const free = this.withRoom(this.pool.candidates(waiter.tried));
      if (free.length === 0) {
        if (!this.anyRoom()) return;
        i++; // this one has tried the backends with room: let the next one have them
        continue;
      }
      const backend = this.take(this.choose(free));
      this.leave(waiter, (w) => w.resolve(backend));
    }
  }

  private leave(waiter: Waiter, settle: (waiter: Waiter) => void): void {
    const index = this.queue.indexOf(waiter);
    if (index === -1) return;
    this.queue.splice(index, 1);
    clearTimeout(waiter.timer);
    waiter.waiting.onCut = undefined;
    this.metrics.queueDepth.set(this.queue.length);
    this.metrics.queueWait((performance.now() - waiter.enqueuedAt) / 1000);
    settle(waiter);
  }

  private shed(reason: ShedReason, message: string): OverloadedException {
    this.metrics.shed(reason);
    return new OverloadedException(
      reason,
      `overloaded: ${message}`,
      this.retryAfterSeconds,
    );
  }

  /**
   * How long the next in line may wait for a slot: every request in flight
   * has its answer within about one latency (SRTT + 4 x RTTVAR), so the
   * candidates' limits free up once per latency and the k-th in line gets a
   * slot within ceil(k / sum of limits) latencies. Little's law (k x latency /
   * limit) is only the average: a server whose workers finish together, or
   * answers that come in two latencies (at once, or after a turn in the
   * server's own queue), leave a request queued past it, and its refusal
   * would then come from the timer, late. 0 until each candidate has
   * SETTLED_SAMPLES answers.
   */
  private longestWait(candidates: Backend[]): number {
    let limits = 0;
    let latency = 0;
    for (const backend of candidates) {
      const slot = this.slot(backend);
      if (!slot.settled) return 0;
      limits += slot.limit;
      latency = Math.max(latency, slot.slowest);
    }
    return Math.ceil((this.queue.length + 1) / limits) * latency;
  }

  private fastest(candidates: Backend[]): number {
    let best = Infinity;
    for (const backend of candidates)
      best = Math.min(best, this.slot(backend).slowest);
    return best;
  }

  private withRoom(candidates: Backend[]): Backend[] {
    return candidates.filter((backend) => this.slot(backend).hasRoom);
  }

  private anyRoom(): boolean {
    for (const slot of this.slots.values()) if (slot.hasRoom) return true;
    return false;
  }

  private choose(free: Backend[]): Backend {
    return this.pool.choose(free) as Backend;
  }

  private take(backend: Backend): Backend {
    this.slot(backend).active++;
    return backend;
  }

  private slot(backend: Backend): BackendSlot {
    return this.slots.get(backend) as BackendSlot;
  }
}
