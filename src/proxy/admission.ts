import type { ConfigType } from '@nestjs/config';
import { type Priority, rankOf } from '../common/priority.js';
import { OverloadedException } from '../common/unavailable.exception.js';
import { backendConfig } from '../config/backend.config.js';
import { AdaptiveLimit } from './adaptive-limit.js';
import type { Backend } from './backend.js';
import { BackendSlot, fastestAnswer, longestWait } from './backend-slot.js';
import type { PoolMetrics } from './pool-metrics.js';
import { WaitQueue } from './wait-queue.js';

export type ShedReason =
  'queue_full' | 'displaced' | 'queue_timeout' | 'deadline';

/**
 * The request waiting for a slot, as admission sees it: `cut` once the client
 * left or its deadline passed, `onCut` called when that happens (set while it
 * waits in the queue).
 */
export interface Waiting {
  readonly cut: unknown;
  /** Its class in the queue (its tenant's; `standard` without tenants). */
  readonly priority: Priority;
  onCut: (() => void) | undefined;
}

/** The pool admission works for: its candidates and its balancing policy. */
export interface AdmittingPool {
  readonly backends: readonly Backend[];
  candidates(tried?: ReadonlySet<Backend>): Backend[];
  choose(candidates: readonly Backend[]): Backend | undefined;
}

interface Waiter {
  priority: Priority;
  tried: ReadonlySet<Backend> | undefined;
  deadline: number;
  waiting: Waiting;
  enqueuedAt: number;
  resolve: (backend: Backend | undefined) => void;
  reject: (err: OverloadedException) => void;
  timer: NodeJS.Timeout;
  onAbort: () => void;
}

/**
 * Admission control (BACKEND_MAX_CONCURRENCY): each backend takes at most its
 * limit (fixed, or learned by `AdaptiveLimit`); a request that finds every
 * eligible backend full waits in the pool's `WaitQueue` (by class), and gets
 * 503 `overloaded` at once when the queue is full (unless it displaces a
 * lower class), when it is sheddable and higher classes are busy, when it
 * waited QUEUE_TIMEOUT_MS, or when it cannot finish by its deadline
 * (BACKEND_TIMEOUT_MS). Retries go through here too. One per pool; off (0,
 * the default) a pool has none: the proxy's only cost is that check.
 */
export class Admission {
  private readonly slots = new Map<Backend, BackendSlot>();
  private readonly queue = new WaitQueue<Waiter>();
  private readonly retryAfterSeconds: number;
  private readonly messages: Record<ShedReason, string>;

  constructor(
    private readonly pool: AdmittingPool,
    private readonly metrics: PoolMetrics,
    private readonly config: ConfigType<typeof backendConfig>,
  ) {
    metrics.queueDepth.set(0);
    const full = `the queue is full (${config.queueMax})`;
    this.messages = {
      queue_full: full,
      displaced: `${full} and a request of a higher class took this one's place`,
      queue_timeout: `no backend was free within ${config.queueTimeoutMs} ms`,
      deadline: `no backend can answer within ${config.timeoutMs} ms`,
    };
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
    if (free.length > 0 && !this.yields(waiting.priority, candidates))
      return Promise.resolve(this.take(this.pool.choose(free) as Backend));
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
    const { priority } = waiting;
    const { queueMax } = this.config;
    const queued = this.queue.length;
    const now = performance.now();
    this.queue.found(priority, now);
    const slots = this.slotsOf(candidates);
    const refusal =
      priority === 'sheddable'
        ? this.queue.refusesSheddable(queueMax, fastestAnswer(slots), now)
        : undefined;
    if (refusal) return this.refuse('queue_full', priority, refusal);
    // false: there is room; undefined: full, and nobody of a lower class to displace.
    const victim = queued >= queueMax && this.queue.newestBelow(priority);
    if (victim === undefined) return this.refuse('queue_full', priority);
    const ahead = this.queue.ahead(priority);
    const timeLeft = this.slack(slots, deadline, ahead, now);
    if (timeLeft <= 0) return this.refuse('deadline', priority);
    if (victim)
      this.leave(victim, (w) => w.reject(this.shed('displaced', w.priority)));
    const byDeadline = timeLeft < this.config.queueTimeoutMs;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        priority,
        tried,
        deadline,
        waiting,
        enqueuedAt: now,
        resolve,
        reject,
        timer: setTimeout(
          () =>
            this.leave(waiter, (w) =>
              w.reject(
                this.shed(byDeadline ? 'deadline' : 'queue_timeout', priority),
              ),
            ),
          byDeadline ? timeLeft : this.config.queueTimeoutMs,
        ),
        onAbort: () => this.leave(waiter, (w) => w.resolve(undefined)),
      };
      waiting.onCut = waiter.onAbort;
      this.queue.push(waiter, now);
      if (ahead < this.queue.length) this.overtaken(priority, now);
      this.metrics.queueDepth.set(this.queue.length);
    });
  }

  /** Hands freed slots to waiters: by class, first come first served within one. */
  private drain(): void {
    for (const queue of this.queue.inOrder()) {
      for (let i = 0; i < queue.length;) {
        const waiter = queue[i];
        const free = this.withRoom(this.pool.candidates(waiter.tried));
        if (free.length === 0) {
          if (!this.anyRoom()) return;
          i++; // this one has tried the backends with room: let the next one have them
          continue;
        }
        const backend = this.take(this.pool.choose(free) as Backend);
        this.leave(waiter, (w) => w.resolve(backend));
      }
    }
  }

  private leave(waiter: Waiter, settle: (waiter: Waiter) => void): void {
    if (!this.queue.remove(waiter)) return;
    clearTimeout(waiter.timer);
    waiter.waiting.onCut = undefined;
    this.metrics.queueDepth.set(this.queue.length);
    this.metrics.queueWait((performance.now() - waiter.enqueuedAt) / 1000);
    settle(waiter);
  }

  private refuse(
    reason: ShedReason,
    priority: Priority,
    message?: string,
  ): Promise<never> {
    return Promise.reject(this.shed(reason, priority, message));
  }

  private shed(
    reason: ShedReason,
    priority: Priority,
    message = this.messages[reason],
  ): OverloadedException {
    this.metrics.shed(reason, priority);
    return new OverloadedException(
      reason,
      `overloaded: ${message}`,
      this.retryAfterSeconds,
    );
  }

  /**
   * The time a request may wait (its deadline less the answer's own time),
   * or 0 when, with `ahead` requests served first, it cannot finish in time.
   */
  private slack(
    slots: BackendSlot[],
    deadline: number,
    ahead: number,
    now: number,
  ): number {
    const timeLeft = deadline - now - fastestAnswer(slots);
    return longestWait(slots, ahead) > timeLeft ? 0 : timeLeft;
  }

  /**
   * A request of `priority` went ahead of the lower classes: those it leaves
   * unable to finish in time are refused now, not when their deadline passes.
   */
  private overtaken(priority: Priority, now: number): void {
    let ahead = 0;
    for (const [rank, queue] of this.queue.inOrder().entries()) {
      for (let i = 0; rank > rankOf(priority) && i < queue.length;) {
        const { tried, deadline } = queue[i];
        const slots = this.slotsOf(this.pool.candidates(tried));
        if (this.slack(slots, deadline, ahead + i, now) > 0) i++;
        else
          this.leave(queue[i], (w) =>
            w.reject(this.shed('deadline', w.priority)),
          );
      }
      ahead += queue.length;
    }
  }

  /** A sheddable request leaves even a free slot to higher classes that had to wait of late (wait() refuses it). */
  private yields(priority: Priority, candidates: Backend[]): boolean {
    if (priority !== 'sheddable') return false;
    const withinMs = fastestAnswer(this.slotsOf(candidates));
    return this.queue.busyAboveSheddable(withinMs, performance.now());
  }

  private withRoom(candidates: Backend[]): Backend[] {
    return candidates.filter((backend) => this.slot(backend).hasRoom);
  }

  private anyRoom(): boolean {
    for (const slot of this.slots.values()) if (slot.hasRoom) return true;
    return false;
  }

  private take(backend: Backend): Backend {
    this.slot(backend).active++;
    return backend;
  }

  private slotsOf(candidates: Backend[]): BackendSlot[] {
    return candidates.map((backend) => this.slot(backend));
  }

  private slot(backend: Backend): BackendSlot {
    return this.slots.get(backend) as BackendSlot;
  }
}
