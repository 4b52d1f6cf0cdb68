import { Logger } from '@nestjs/common';
import type { Counter } from 'prom-client';
import type { CaptureEvent, CaptureSink } from './capture-event.js';
import type { CaptureMetrics, DropReason } from './capture-metrics.js';
import { ExchangeRing } from './exchange-ring.js';
import { HeldExchange, type PackedExchange } from './packed-exchange.js';

export interface DeliveryOptions {
  /** Bytes of exchanges held (queued or being sent) at most: the ring's size. */
  readonly maxBytes: number;
  /** Bytes per send at most (besides `sink.batchSize` exchanges). */
  readonly batchBytes: number;
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
 * One sink's delivery: captured exchanges packed into a ring of a fixed
 * size (its share of CAPTURE_BUFFER_BYTES) and drained in the background
 * by up to `sink.concurrency` workers, each sending up to `sink.batchSize`
 * exchanges at a time, with retries (the failed events only) and
 * exponential backoff. An exchange that does not fit is dropped, as is an
 * event whose retries ran out; every drop is counted. Nothing here is ever
 * awaited by a request.
 */
export class Delivery {
  private readonly logger = new Logger('Capture');
  private readonly ring: ExchangeRing;
  private heldEvents = 0;
  private workers = 0;
  /** Sends in a row that delivered nothing: while > 0, one worker alone probes the sink. */
  private failures = 0;
  /** Set when an exchange did not fit; cleared once a tenth of the buffer is free again. */
  private full = false;
  private scheduled = false;
  private closing = false;
  private readonly sleepers = new Set<() => void>();
  private idle: (() => void) | undefined;
  private readonly delivered: Counter.Internal;
  private readonly lost: Counter.Internal;
  private readonly reasons = new Map<DropReason, Counter.Internal>();
  private droppedSinceLog = 0;
  private lastDropLog = 0;

  constructor(
    private readonly sink: CaptureSink,
    private readonly options: DeliveryOptions,
  ) {
    this.ring = new ExchangeRing(options.maxBytes);
    this.delivered = options.metrics.events.labels(sink.name, 'delivered');
    this.lost = options.metrics.events.labels(sink.name, 'dropped');
  }

  get name(): string {
    return this.sink.name;
  }

  /** Bytes held now (queued and in flight). */
  get bytes(): number {
    return this.ring.used;
  }

  /** Events held now, neither delivered nor dropped yet. */
  get events(): number {
    return this.heldEvents;
  }

  /**
   * Whether an exchange would be taken now. Once one did not fit, none is
   * until a tenth of the buffer is free again: a buffer that stays full
   * (a sink down) costs a sampled request a look at this flag, and no
   * exchange is built to be dropped.
   */
  get hasRoom(): boolean {
    return !this.closing && !this.full;
  }

  /** Drops an exchange that was never built: the buffer had no room for any. */
  refuse(): void {
    this.drop(2, this.closing ? 'shutdown' : 'buffer_full');
  }

  /** Queues an exchange (its two events), or drops them when it does not fit. */
  offer(packed: PackedExchange): void {
    if (this.closing) return this.drop(2, 'shutdown');
    if (
      !this.ring.add(packed.length, (target, at) => packed.writeTo(target, at))
    ) {
      this.full = true;
      return this.drop(2, 'buffer_full');
    }
    this.heldEvents += 2;
    this.schedule();
  }

  /**
   * Workers start on the next turn, or after the sink's linger: exchanges
   * queued meanwhile go together (one write, or one Redis pipeline, for a
   * batch costs far less per event than one per exchange).
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    if (this.sink.lingerMs > 0) setTimeout(this.pump, this.sink.lingerMs);
    else setImmediate(this.pump);
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
    const left = this.ring.clear();
    if (left > 0) {
      this.heldEvents -= left * 2;
      this.drop(left * 2, 'shutdown');
    }
    await this.sink.close();
  }

  private get pending(): number {
    return this.ring.queued;
  }

  /** Less than a batch is queued, and the sink would rather wait for more (not when closing). */
  private get lingers(): boolean {
    return (
      !this.closing &&
      this.sink.lingerMs > 0 &&
      this.pending < this.sink.batchSize
    );
  }

  private readonly pump = (): void => {
    this.scheduled = false;
    // While sends fail, one worker at a time (see `work`).
    const most = this.failures > 0 ? 1 : this.sink.concurrency;
    while (this.workers < most && this.pending > 0) {
      this.workers++;
      void this.work();
    }
  };

  private async work(): Promise<void> {
    try {
      for (let first = true; this.pending > 0; first = false) {
        // A sink that is down or hanging gets one send at a time (with its
        // retries and backoff), not one per worker: the others stop until
        // a send gets through (and `pump` starts them again).
        if (this.failures > 0 && this.workers > 1) break;
        // After a send, less than a batch waits for the linger again:
        // under a steady trickle, sends stay full instead of one per exchange.
        if (!first && this.lingers) {
          this.schedule();
          break;
        }
        const records: number[] = [];
        const events = this.take(records);
        try {
          await this.deliver(events);
        } finally {
          for (const record of records) this.ring.done(record);
          if (this.full && this.ring.used <= this.options.maxBytes * 0.9)
            this.full = false;
        }
      }
    } finally {
      this.workers--;
      if (this.workers === 0 && this.pending === 0) this.idle?.();
    }
  }

  /** Up to a batch of queued exchanges (their records in `records`), as events. */
  private take(records: number[]): CaptureEvent[] {
    const events: CaptureEvent[] = [];
    let bytes = 0;
    while (
      records.length < this.sink.batchSize &&
      bytes < this.options.batchBytes
    ) {
      const taken = this.ring.take();
      if (!taken) break;
      records.push(taken.record);
      bytes += taken.bytes.length;
      const held = new HeldExchange(Buffer.from(taken.bytes));
      events.push({ held, kind: 'request' }, { held, kind: 'response' });
    }
    return events;
  }

  private async deliver(batch: readonly CaptureEvent[]): Promise<void> {
    let events = batch;
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
      if (delivered + rejected === 0) this.failures++;
      else if (this.failures > 0) {
        // Through again: every worker back.
        this.failures = 0;
        setImmediate(this.pump);
      }
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
    let counted = this.reasons.get(reason);
    if (!counted) {
      counted = this.options.metrics.dropped.labels(reason);
      this.reasons.set(reason, counted);
    }
    counted.inc(events);
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
