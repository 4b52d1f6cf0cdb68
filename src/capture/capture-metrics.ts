import { counter, gauge } from '../metrics/metrics.service.js';

/** Why an event was not delivered (the `reason` of gateway_capture_dropped_total). */
export type DropReason =
  'buffer_full' | 'timeout' | 'error' | 'rejected' | 'shutdown';

/**
 * Capture's metrics, registered only when it is on. Every event counts
 * once per sink: delivered, or dropped with its reason.
 */
export class CaptureMetrics {
  readonly events = counter({
    name: 'gateway_capture_events_total',
    help: 'Captured events, per sink, by result (delivered, dropped)',
    labelNames: ['sink', 'result'],
  });
  readonly dropped = counter({
    name: 'gateway_capture_dropped_total',
    help: 'Captured events not delivered, by reason (buffer_full, timeout, error, rejected, shutdown); once per sink',
    labelNames: ['reason'],
  });
  readonly retries = counter({
    name: 'gateway_capture_retries_total',
    help: 'Captured events sent again after a failed attempt, per sink',
    labelNames: ['sink'],
  });

  constructor(buffered: () => Iterable<readonly [string, number]>) {
    gauge({
      name: 'gateway_capture_buffer_bytes',
      help: 'Bytes of captured exchanges waiting for (or in) delivery, per sink',
      labelNames: ['sink'],
      collect() {
        for (const [sink, bytes] of buffered()) this.labels(sink).set(bytes);
      },
    });
  }
}
