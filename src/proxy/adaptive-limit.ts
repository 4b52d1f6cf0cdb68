/** Tuning of the gradient controller; the defaults are Envoy's where it has one. */
export interface AdaptiveLimitOptions {
  minLimit: number;
  maxLimit: number;
  /** Latency samples are aggregated over windows this long (Envoy: concurrency_update_interval). */
  sampleWindowMs?: number;
  /** The no-load latency is measured again this often, ±15 % (Envoy: 60 s). */
  minRttIntervalMs?: number;
  /** Requests measured at the minimum limit to learn the no-load latency (Envoy: 50). */
  minRttSamples?: number;
}

/**
 * Latency above minRTT still read as "no queueing" (Envoy's
 * min_rtt_calc_params.buffer, 25 % by default). 10 %: the gateway queues in
 * front of the backend, so the backend needs no queue of its own; at 25 %,
 * with the burst headroom, a 4-slot server settled at 7-10.
 */
const BUFFER = 0.1;
const MIN_GRADIENT = 0.5;
const MAX_GRADIENT = 2;
const JITTER = 0.15;
/** Windows in a row at the minimum limit that make the no-load latency suspect. */
const STUCK_AT_MINIMUM = 5;
/**
 * Fewest answers a window needs (Netflix's WindowedLimit windowSize, 10): the
 * median of 5 answers of a slow backend flips between its two latencies
 * (served at once, or after a turn in its own queue).
 */
const MIN_WINDOW_SAMPLES = 10;
/** Percentile of the minRTT samples taken as the no-load latency. */
const MIN_RTT_PERCENTILE = 0.1;

/**
 * One backend's concurrency limit, learned from its latency. The algorithm is
 * Envoy's adaptive concurrency filter, gradient controller
 * (envoyproxy/envoy source/extensions/filters/http/adaptive_concurrency/
 * controller/gradient_controller.cc):
 *
 * - minRTT, the no-load latency: at start and then every `minRttIntervalMs`
 *   (jittered), the limit drops to `minLimit` until `minRttSamples` requests
 *   started in that phase have finished; their 10th percentile is minRTT
 *   (Envoy takes the median; a low percentile keeps answers delayed by the
 *   gateway's own CPU from inflating the baseline). Timeouts do not count:
 *   they only bound a latency from below.
 * - every `sampleWindowMs` with at least 10 answers (the minimum of Netflix's
 *   WindowedLimit), the window's median latency (sampleRTT) gives
 *   gradient = clamp(minRTT * 1.1 / sampleRTT, 0.5, 2) and
 *   limit = limit * gradient + sqrt(limit * gradient) (burst headroom),
 *   clamped to [minLimit, maxLimit]. Latency near minRTT raises the limit,
 *   queueing inside the backend cuts it.
 * - five windows in a row at `minLimit` re-measure minRTT at once.
 *
 * One rule comes from Netflix concurrency-limits' Gradient2Limit: a window in
 * which fewer than half the limit were in flight (the gateway, not the
 * backend, was the bottleneck) may lower the limit but never raise it, so an
 * idle backend does not drift up to `maxLimit`.
 *
 * No timers: time comes from `now`, windows close on the next sample.
 */
export class AdaptiveLimit {
  /** The limit as a real number (as Netflix's limits keep it): growth below 1 per window adds up. */
  private estimate: number;
  private current: number;
  private minRtt = 0;
  private measuringSince: number | null = null;
  private deferred: number;
  private nextMinRttAt = 0;
  private samples: number[] = [];
  private windowStart: number;
  private windowPeak = 0;
  private atMinimum = 0;
  private readonly sampleWindowMs: number;
  private readonly minRttIntervalMs: number;
  private readonly minRttSamples: number;

  constructor(
    private readonly options: AdaptiveLimitOptions,
    private readonly now: () => number = () => performance.now(),
    private readonly random: () => number = Math.random,
  ) {
    this.sampleWindowMs = options.sampleWindowMs ?? 100;
    this.minRttIntervalMs = options.minRttIntervalMs ?? 30_000;
    this.minRttSamples = options.minRttSamples ?? 25;
    this.estimate = options.minLimit;
    this.current = options.minLimit;
    this.deferred = options.minLimit;
    this.windowStart = now();
    this.startMinRtt(this.windowStart);
  }

  /** Requests the backend may have in flight now. */
  get limit(): number {
    return this.current;
  }

  /** The learned no-load latency in ms (0 until first measured). */
  get minRttMs(): number {
    return this.minRtt;
  }

  /**
   * A request that started at `startedAt` (same clock) got its answer after
   * `rttMs` (`timedOut`: was given up after `rttMs`); `inflight` requests,
   * this one included, were in flight.
   */
  sample(
    startedAt: number,
    rttMs: number,
    inflight: number,
    timedOut = false,
  ): void {
    const now = this.now();
    if (this.measuringSince !== null) {
      // Requests sent before the phase began ran at a higher limit.
      if (startedAt < this.measuringSince || timedOut) return;
      this.samples.push(rttMs);
      if (this.samples.length >= this.minRttSamples) this.endMinRtt(now);
      return;
    }
    if (now >= this.nextMinRttAt) {
      this.startMinRtt(now);
      return;
    }
    this.samples.push(rttMs);
    if (inflight > this.windowPeak) this.windowPeak = inflight;
    if (
      now - this.windowStart >= this.sampleWindowMs &&
      this.samples.length >= MIN_WINDOW_SAMPLES
    )
      this.closeWindow(now);
  }

  private closeWindow(now: number): void {
    const sampleRtt = quantile(this.samples, 0.5);
    const gradient = Math.min(
      MAX_GRADIENT,
      Math.max(MIN_GRADIENT, (this.minRtt * (1 + BUFFER)) / sampleRtt),
    );
    const scaled = this.estimate * gradient;
    let next = scaled + Math.sqrt(scaled);
    if (this.windowPeak < this.current / 2)
      next = Math.min(next, this.estimate);
    next = Math.min(
      this.options.maxLimit,
      Math.max(this.options.minLimit, next),
    );
    const limit = Math.floor(next);
    this.atMinimum =
      limit === this.options.minLimit && this.current === limit
        ? this.atMinimum + 1
        : 0;
    this.estimate = next;
    this.current = limit;
    this.resetWindow(now);
    if (this.atMinimum >= STUCK_AT_MINIMUM) this.startMinRtt(now);
  }

  private startMinRtt(now: number): void {
    this.deferred = this.estimate;
    this.current = this.options.minLimit;
    this.measuringSince = now;
    this.atMinimum = 0;
    this.resetWindow(now);
  }

  private endMinRtt(now: number): void {
    this.minRtt = quantile(this.samples, MIN_RTT_PERCENTILE);
    this.estimate = this.deferred;
    this.current = Math.floor(this.deferred);
    this.measuringSince = null;
    const jitter = 1 + this.random() * JITTER;
    this.nextMinRttAt = now + this.minRttIntervalMs * jitter;
    this.resetWindow(now);
  }

  private resetWindow(now: number): void {
    this.samples = [];
    this.windowStart = now;
    this.windowPeak = 0;
  }
}

function quantile(values: number[], q: number): number {
  const sorted = values.slice().sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length * q)];
}
