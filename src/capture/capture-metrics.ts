import { counter, gauge } from '../metrics/metrics.service.js';

/** Why an event was not delivered (the `reason` of gateway_capture_dropped_total). */
export type DropReason =
  'buffer_full' | 'timeout' | 'error' | 'rejected' | 'shutdown';

export interface BufferState {
  readonly name: string;
  readonly bytes: number;
  readonly events: number;
}

/**
 * Capture's metrics, registered only when it is on. Each sampled exchange is two
 * events, and each event counts once per sink: delivered, or dropped with
 * its reason; until then it is buffered. So, per sink, 2 x sampled =
 * delivered + dropped + buffered (+ the few exchanges whose response has
 * not closed yet).
 */
export class CaptureMetrics {
  readonly sampled = counter({
    name: 'gateway_capture_sampled_total',
    help: 'Exchanges sampled for capture (two events each)',
  });
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

  /** `buffered`: each sink's name, bytes and events held (queued or being sent). */
  constructor(buffered: () => Iterable<BufferState>) {
    gauge({
      name: 'gateway_capture_buffer_bytes',
      help: 'Bytes of captured exchanges waiting for (or in) delivery, per sink',
      labelNames: ['sink'],
      collect() {
        for (const { name, bytes } of buffered()) this.labels(name).set(bytes);
      },
    });
    gauge({
      name: 'gateway_capture_buffer_events',
      help: 'Captured events waiting for (or in) delivery, per sink',
      labelNames: ['sink'],
      collect() {
        for (const { name, events } of buffered())
          this.labels(name).set(events);
      },
    });
  }
}
