import { Logger } from '@nestjs/common';
import type { Counter } from 'prom-client';
import type { CaptureEvent, CaptureSink } from './capture-event.js';
import type { CaptureMetrics, DropReason } from './capture-metrics.js';
import type { CapturedExchange } from './sampled-exchange.js';

export interface DeliveryOptions {
  /** Bytes of exchanges held (queued or being sent) at most. */
  readonly maxBytes: number;
  /** Attempts after the first. */
  readonly retries: number;
  /** First retry's delay; doubled each time up to MAX_BACKOFF_MS. */
  readonly backoffMs: number;
  readonly metrics: CaptureMetrics;
}

const MAX_BACKOFF_MS = 2000;
/** Drops are logged at most this often (with their count). */
const DROP_LOG_EVERY_MS = 10_000;

/**
 * One sink's delivery: a queue of captured exchanges bounded in bytes and
 * drained in the background by up to `sink.concurrency` workers, each
 * sending up to `sink.batchSize` exchanges at a time, with retries (the
 * failed events only) and exponential backoff. An exchange that does not
 * fit is dropped, as is an event whose retries ran out; every drop is
 * counted. Nothing here is ever awaited by a request.
 */
export class Delivery {
  private readonly logger = new Logger('Capture');
  private queue: CapturedExchange[] = [];
  private head = 0;
  private held = 0;
  private heldEvents = 0;
  private workers = 0;
  private scheduled = false;
  private closing = false;
  private readonly sleepers = new Set<() => void>();
  private idle: (() => void) | undefined;
  private readonly delivered: Counter.Internal;
  private readonly lost: Counter.Internal;
  private droppedSinceLog = 0;
  private lastDropLog = 0;

  constructor(
    private readonly sink: CaptureSink,
    private readonly options: DeliveryOptions,
  ) {
    this.delivered = options.metrics.events.labels(sink.name, 'delivered');
    this.lost = options.metrics.events.labels(sink.name, 'dropped');
  }

  get name(): string {
    return this.sink.name;
  }

  /** Bytes held now (queued and in flight). */
  get bytes(): number {
    return this.held;
  }

  /** Events held now, neither delivered nor dropped yet. */
  get events(): number {
    return this.heldEvents;
  }

  /** Queues an exchange (its two events), or drops them when it does not fit. */
  offer(exchange: CapturedExchange): void {
    if (this.closing) return this.drop(2, 'shutdown');
    if (this.held + exchange.bytes > this.options.maxBytes)
      return this.drop(2, 'buffer_full');
    this.held += exchange.bytes;
    this.heldEvents += 2;
    this.queue.push(exchange);
    // Workers start on the next turn: exchanges of one turn go together.
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(this.pump);
  }

  /**
   * Stops taking exchanges, keeps delivering for up to `graceMs` (no more
   * retries), then drops what is left and closes the sink.
   */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    for (const wake of this.sleepers) wake();
    if (this.workers > 0 || this.pending > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.idle = resolve;
        timer = setTimeout(resolve, graceMs);
      });
      clearTimeout(timer);
    }
    const left = this.pending;
    this.queue = [];
    this.head = 0;
    if (left > 0) {
      this.heldEvents -= left * 2;
      this.drop(left * 2, 'shutdown');
    }
    await this.sink.close();
  }

  private get pending(): number {
    return this.queue.length - this.head;
  }

  private readonly pump = (): void => {
    this.scheduled = false;
    while (this.workers < this.sink.concurrency && this.pending > 0) {
      this.workers++;
      void this.work();
    }
  };

  private async work(): Promise<void> {
    try {
      while (this.pending > 0) {
        const batch = this.take(this.sink.batchSize);
        try {
          await this.deliver(batch);
        } finally {
          for (const exchange of batch) this.held -= exchange.bytes;
        }
      }
    } finally {
      this.workers--;
      if (this.workers === 0 && this.pending === 0) this.idle?.();
    }
  }

  private take(count: number): CapturedExchange[] {
    const end = Math.min(this.head + count, this.queue.length);
    const batch = this.queue.slice(this.head, end);
    this.head = end;
    // Compact once the consumed part dominates.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return batch;
  }

  private async deliver(batch: readonly CapturedExchange[]): Promise<void> {
    let events: CaptureEvent[] = [];
    for (const exchange of batch)
      events.push(
        { exchange, kind: 'request' },
        { exchange, kind: 'response' },
      );
    for (let attempt = 0; ; attempt++) {
      const results = await this.sink.send(events);
      const failed: CaptureEvent[] = [];
      let reason: DropReason = 'error';
      let delivered = 0;
      let rejected = 0;
      results.forEach((result, i) => {
        if (result === 'delivered') delivered++;
        else if (result === 'rejected') rejected++;
        else {
          failed.push(events[i]);
          reason = result;
        }
      });
      this.heldEvents -= delivered + rejected;
      if (delivered > 0) this.delivered.inc(delivered);
      if (rejected > 0) this.drop(rejected, 'rejected');
      if (failed.length === 0) return;
      if (attempt >= this.options.retries || this.closing) {
        this.heldEvents -= failed.length;
        return this.drop(failed.length, reason);
      }
      this.options.metrics.retries.labels(this.sink.name).inc(failed.length);
      await this.backoff(attempt);
      events = failed;
    }
  }

  /** Waits before a retry (with up to 20 % jitter); cut short by close. */
  private backoff(attempt: number): Promise<void> {
    const ms =
      Math.min(this.options.backoffMs * 2 ** attempt, MAX_BACKOFF_MS) *
      (1 + Math.random() * 0.2);
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  private drop(events: number, reason: DropReason): void {
    this.lost.inc(events);
    this.options.metrics.dropped.labels(reason).inc(events);
    this.droppedSinceLog += events;
    const now = Date.now();
    if (now - this.lastDropLog < DROP_LOG_EVERY_MS) return;
    this.logger.warn(
      { sink: this.sink.name, dropped: this.droppedSinceLog, reason },
      'captured events dropped (gateway_capture_dropped_total has every reason)',
    );
    this.lastDropLog = now;
    this.droppedSinceLog = 0;
  }
}
