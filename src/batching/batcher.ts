import { BadGatewayException, GatewayTimeoutException } from '@nestjs/common';
import { OverloadedException } from '../common/unavailable.exception.js';
import type { BackendPool } from '../proxy/backend-pool.js';
import type { ForwardRequest } from '../proxy/forwarding.js';
import type { CallAnswer, ProxyService } from '../proxy/proxy.service.js';
import {
  batchRequest,
  type BatchRoute,
  itemAnswer,
  resultsOf,
} from './batch-codec.js';
import {
  type BatchClient,
  Entry,
  highest,
  linkedObserver,
  type Outcome,
} from './batch-entry.js';
import type { BatchItem } from './batch-item.js';
import type { BatchMetrics } from './batch-metrics.js';

export interface BatcherOptions {
  readonly proxy: ProxyService;
  readonly metrics: BatchMetrics;
  readonly shed: (reason: string, client: BatchClient) => void;
  readonly maxSize: number;
  readonly maxDelayMs: number;
  /** Items waiting at most (QUEUE_MAX, or BATCH_MAX_SIZE when larger). */
  readonly queueMax: number;
  /** BACKEND_TIMEOUT_MS: an item's deadline from its arrival. */
  readonly timeoutMs: number;
  /** Retry-After of a 503 overloaded (admission's: QUEUE_TIMEOUT_MS, in s). */
  readonly retryAfterSeconds: number;
}

let batches = 0;

/**
 * The items of one backend pool waiting to be sent together. A batch goes
 * when a backend slot is free (admission control): the items that arrived
 * while every slot was busy share the next one, up to BATCH_MAX_SIZE, so
 * batches form by themselves under load and an idle client waits for
 * nobody (a batch of one goes alone, as is). One item's failure fails only
 * itself: a batch the backend refuses (400, 422, 500, ...) is split in
 * halves until the failing items stand alone and get the backend's own
 * answer to them.
 */
export class Batcher {
  private readonly queue: Entry[] = [];
  /** A batch call waiting for a slot: it takes the queue's items when it gets one. */
  private acquiring = false;
  private delay: NodeJS.Timeout | undefined;
  private soon = false;

  constructor(
    private readonly pool: BackendPool,
    readonly route: BatchRoute,
    private readonly options: BatcherOptions,
  ) {}

  add(
    client: BatchClient,
    item: BatchItem,
    alone: () => Promise<Outcome> | Outcome,
  ): Promise<Outcome> {
    if (this.queue.length >= this.options.queueMax) {
      this.options.shed('queue_full', client);
      const full = `the batch queue is full (${this.options.queueMax})`;
      return Promise.reject(this.overloaded('queue_full', full));
    }
    return new Promise<Outcome>((resolve, reject) => {
      const entry = new Entry(client, item, alone, resolve, reject);
      entry.timer = setTimeout(
        () => this.expire(entry),
        this.options.timeoutMs,
      );
      client.reply.raw.once('close', () => {
        // Left before its batch went: it is not sent.
        if (!entry.taken && entry.end()) {
          this.options.metrics.queue(-1);
          resolve(undefined);
        }
      });
      this.queue.push(entry);
      this.options.metrics.queue(1);
      this.pumpSoon();
    });
  }

  /**
   * Pumps once the requests read in this turn of the event loop are all in:
   * those that arrived together go together.
   */
  private pumpSoon(): void {
    if (this.soon) return;
    this.soon = true;
    setImmediate(() => {
      this.soon = false;
      this.pump();
    });
  }

  /** Starts a batch call when none is waiting for a slot (after BATCH_MAX_DELAY_MS for company). */
  private pump(): void {
    if (this.acquiring || this.queue.length === 0) return;
    const { maxDelayMs, maxSize } = this.options;
    if (maxDelayMs > 0 && this.queue.length < maxSize) {
      const wait = this.queue[0].arrivedAt + maxDelayMs - performance.now();
      if (wait > 0) {
        this.delay ??= setTimeout(() => {
          this.delay = undefined;
          this.pump();
        }, wait);
        return;
      }
    }
    clearTimeout(this.delay);
    this.delay = undefined;
    this.acquiring = true;
    const id = `batch-${++batches}`;
    let batch: Entry[] | undefined;
    const send = () => {
      this.acquiring = false;
      batch = this.take();
      queueMicrotask(() => this.pump());
      if (batch.length > 1) return this.request(batch, id);
      if (batch.length === 1) this.goAlone(batch[0]);
      return undefined;
    };
    this.options.proxy
      .call(
        this.pool,
        send,
        id,
        this.route.path,
        linkedObserver(() => batch),
        highest(this.queue),
      )
      .then(
        (answer) => {
          if (answer && batch) this.settle(batch, id, answer);
        },
        (err: unknown) => {
          if (batch) return this.failCall(batch, err);
          // Refused before it held a slot (shed): so is every item waiting.
          this.acquiring = false;
          const queued = this.queue.splice(0).filter((e) => !e.done);
          this.options.metrics.queue(-queued.length);
          // Admission counted the batch's refusal once: count each item.
          if (err instanceof OverloadedException)
            for (let i = 1; i < queued.length; i++)
              this.options.shed(err.reason, queued[i].client);
          this.fail(queued, err);
        },
      );
  }

  /** Up to BATCH_MAX_SIZE items, oldest first, those that left skipped. */
  private take(): Entry[] {
    const batch: Entry[] = [];
    const now = performance.now();
    while (batch.length < this.options.maxSize && this.queue.length > 0) {
      const entry = this.queue.shift()!;
      if (entry.done) continue;
      this.options.metrics.queue(-1);
      entry.taken = true;
      this.options.metrics.wait.observe((now - entry.arrivedAt) / 1000);
      batch.push(entry);
    }
    return batch;
  }

  /** A fixed set of items (half of a refused batch) sent as one call. */
  private sendNow(batch: Entry[]): void {
    const live = batch.filter((entry) => !entry.done);
    if (live.length <= 1) {
      if (live.length === 1) this.goAlone(live[0]);
      return;
    }
    const id = `batch-${++batches}`;
    this.options.proxy
      .call(
        this.pool,
        this.request(live, id),
        id,
        this.route.path,
        linkedObserver(() => live),
        highest(live),
      )
      .then(
        (answer) => {
          if (answer) this.settle(live, id, answer);
        },
        (err: unknown) => this.failCall(live, err),
      );
  }

  /** The batch call for `batch`; its items' access lines name it. */
  private request(batch: Entry[], id: string): ForwardRequest {
    for (const entry of batch) {
      entry.client.state.batchId = id;
      entry.client.state.batchSize = batch.length;
    }
    return batchRequest(
      this.route,
      batch.map((entry) => entry.item),
      id,
    );
  }

  private settle(batch: Entry[], id: string, answer: CallAnswer): void {
    const { metrics } = this.options;
    metrics.size.observe(batch.length);
    if (answer.status < 200 || answer.status >= 300) {
      metrics.batches.labels(String(answer.status)).inc();
      // One bad item fails only itself: halves until it stands alone.
      const half = Math.ceil(batch.length / 2);
      this.sendNow(batch.slice(0, half));
      this.sendNow(batch.slice(half));
      return;
    }
    const results = resultsOf(answer.body, this.route.results);
    if (!results || results.length !== batch.length) {
      metrics.batches.labels('invalid').inc();
      this.fail(
        batch,
        new BadGatewayException(
          `the backend's batch answer has no ${batch.length} results in order`,
        ),
      );
      return;
    }
    metrics.batches.labels(String(answer.status)).inc();
    batch.forEach((entry, i) => this.answer(entry, results[i], answer));
  }

  /** The item's own answer, in /predict's shape, relayed as the backend's would be. */
  private answer(entry: Entry, result: unknown, call: CallAnswer): void {
    if (!entry.end()) return;
    const { reply, request, state, onAnswer } = entry.client;
    const body = Buffer.from(JSON.stringify(itemAnswer(result, entry.item)));
    const headers = { 'content-type': 'application/json' };
    state.backend = call.backend;
    state.backendStatus = call.status;
    state.backendDurationMs = call.durationMs;
    state.relayed = true;
    Promise.resolve(onAnswer?.(200, headers, body))
      .then(() =>
        reply
          .code(200)
          .headers(headers)
          .header('x-request-id', request.id)
          .send(body),
      )
      .then(() => entry.resolve({ status: 200, headers, body }), entry.reject);
  }

  private goAlone(entry: Entry): void {
    if (!entry.end()) return;
    // Answered by its own call: no batch names it.
    entry.client.state.batchId = undefined;
    entry.client.state.batchSize = undefined;
    Promise.resolve().then(entry.alone).then(entry.resolve, entry.reject);
  }

  /** A batch call that brought no answer (transport, 502/503/504 after retries). */
  private failCall(batch: Entry[], err: unknown): void {
    this.options.metrics.batches.labels('error').inc();
    this.fail(batch, err);
  }

  private fail(batch: Entry[], err: unknown): void {
    for (const entry of batch) if (entry.end()) entry.reject(err);
  }

  /** BACKEND_TIMEOUT_MS since the item arrived: 503 while waiting, 504 once sent. */
  private expire(entry: Entry): void {
    if (!entry.end()) return;
    if (entry.taken) {
      entry.reject(
        new GatewayTimeoutException(
          `backend did not answer within ${this.options.timeoutMs} ms`,
        ),
      );
      return;
    }
    this.queue.splice(this.queue.indexOf(entry), 1);
    this.options.metrics.queue(-1);
    this.options.shed('deadline', entry.client);
    const late = `no backend could take it within ${this.options.timeoutMs} ms`;
    entry.reject(this.overloaded('deadline', late));
  }

  private overloaded(reason: string, message: string): OverloadedException {
    const after = this.options.retryAfterSeconds;
    return new OverloadedException(reason, `overloaded: ${message}`, after);
  }
}
