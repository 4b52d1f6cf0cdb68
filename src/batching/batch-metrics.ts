import { counter, gauge, histogram } from '../metrics/metrics.service.js';

const SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 100];
const WAIT_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/** Batching's metrics, registered only when it is on (off, /metrics shows none). */
export class BatchMetrics {
  readonly size = histogram({
    name: 'gateway_batch_size',
    help: 'Items per batch call to a backend',
    buckets: SIZE_BUCKETS,
  });
  readonly wait = histogram({
    name: 'gateway_batch_wait_seconds',
    help: 'Time an item waited before its batch was sent',
    buckets: WAIT_BUCKETS,
  });
  readonly queued = gauge({
    name: 'gateway_batch_queue_items',
    help: 'Items waiting for their batch to be sent, all pools',
  });
  private waitingItems = 0;
  readonly batches = counter({
    name: 'gateway_batches_total',
    help: 'Batch calls, by outcome: the backend status, invalid (results not one per item) or error (no answer)',
    labelNames: ['status'],
  });

  /** Items waiting for their batch, all pools. */
  get waiting(): number {
    return this.waitingItems;
  }

  /** `delta` more (or fewer) items waiting. */
  queue(delta: number): void {
    this.waitingItems += delta;
    this.queued.set(this.waitingItems);
  }
}
