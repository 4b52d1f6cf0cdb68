import type { Counter, Histogram } from 'prom-client';
import type { ExchangeRecorder } from '../common/request-state.js';
import type { MetricsService } from '../metrics/metrics.service.js';

/** The metric children of one (model, version), resolved once, removed with the version. */
export class VersionMetrics implements ExchangeRecorder {
  private readonly requests = new Map<number, Counter.Internal>();
  readonly duration: Histogram.Internal<string>;
  readonly mirrorOk: Counter.Internal;
  readonly mirrorError: Counter.Internal;
  readonly mirrorSkipped: Counter.Internal;
  readonly mismatch: Counter.Internal;

  constructor(
    private readonly metrics: MetricsService,
    readonly model: string,
    readonly version: string,
    mirror: boolean,
  ) {
    this.duration = metrics.modelDuration.labels(model, version);
    this.mirrorOk = metrics.mirrorRequests.labels(model, version, 'ok');
    this.mirrorError = metrics.mirrorRequests.labels(model, version, 'error');
    this.mirrorSkipped = metrics.mirrorRequests.labels(
      model,
      version,
      'skipped',
    );
    this.mismatch = metrics.mirrorMismatches.labels(model, version);
    // A mirror's mismatch count exists from the start: a rate of 0 is data, a missing series is not.
    if (mirror) this.mismatch.inc(0);
  }

  /** Counts a finished exchange (the response closed) under its final status. */
  record(status: number, seconds: number): void {
    let counter = this.requests.get(status);
    if (!counter) {
      counter = this.metrics.modelRequests.labels(
        this.model,
        this.version,
        String(status),
      );
      this.requests.set(status, counter);
    }
    counter.inc();
    this.duration.observe(seconds);
  }

  /** Drops every series of this (model, version): it left the routes file. */
  remove(): void {
    const { model, version } = this;
    for (const status of this.requests.keys())
      this.metrics.modelRequests.remove(model, version, String(status));
    this.metrics.modelDuration.remove(model, version);
    for (const result of ['ok', 'error', 'skipped'])
      this.metrics.mirrorRequests.remove(model, version, result);
    this.metrics.mirrorMismatches.remove(model, version);
  }
}
