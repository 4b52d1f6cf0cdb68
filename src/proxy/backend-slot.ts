import type { Gauge } from 'prom-client';
import type { AdaptiveLimit } from './adaptive-limit.js';

// RFC 6298's retransmission timeout estimator: SRTT and RTTVAR gains, and
// SRTT + 4 x RTTVAR as the latency an answer can take.
const LATENCY_GAIN = 1 / 8;
const DEVIATION_GAIN = 1 / 4;
const DEVIATIONS = 4;
/**
 * Answers before the estimate may refuse a request at the door: the first
 * ones carry connection set-up and a cold process (and RTTVAR starts at half
 * the first answer), so one slow first answer would refuse requests a warm
 * backend serves easily. Until then the queue's timers still hold the deadline.
 */
const SETTLED_SAMPLES = 5;

/**
 * One backend's share of admission: its limit (fixed, or learned by
 * `AdaptiveLimit`), what it has in flight, and its recent latency.
 */
export class BackendSlot {
  active = 0;
  /** Smoothed latency of answers and timeouts, ms (RFC 6298's SRTT; 0: none yet). */
  private latencyMs = 0;
  /** Its smoothed mean deviation, ms (RFC 6298's RTTVAR). */
  private deviationMs = 0;
  /** Latencies tracked so far (up to SETTLED_SAMPLES). */
  private samples = 0;

  constructor(
    private readonly fixed: number,
    private readonly adaptive: AdaptiveLimit | undefined,
    private readonly limitGauge: Gauge.Internal<string>,
  ) {
    limitGauge.set(this.limit);
  }

  get limit(): number {
    return this.adaptive ? this.adaptive.limit : this.fixed;
  }

  get hasRoom(): boolean {
    return this.active < this.limit;
  }

  /** Enough answers seen for the latency estimate to refuse a request. */
  get settled(): boolean {
    return this.samples >= SETTLED_SAMPLES;
  }

  /** The latency an answer of this backend can take (SRTT + 4 x RTTVAR: the RTO). */
  get slowest(): number {
    return this.latencyMs + DEVIATIONS * this.deviationMs;
  }

  /**
   * Gives a slot back. `latencyMs` (an answer, or a timeout: `timedOut`)
   * feeds the latency and the adaptive limit; undefined (a fast failure, or
   * a slot unused) does not.
   */
  release(latencyMs: number | undefined, timedOut: boolean): void {
    if (latencyMs !== undefined) {
      // A timeout says the answer takes longer than `latencyMs`: news only
      // when that is above the latency known.
      if (!timedOut || latencyMs > this.latencyMs) this.track(latencyMs);
      const adaptive = this.adaptive;
      if (adaptive) {
        const before = adaptive.limit;
        adaptive.sample(
          performance.now() - latencyMs,
          latencyMs,
          this.active,
          timedOut,
        );
        if (adaptive.limit !== before) this.limitGauge.set(adaptive.limit);
      }
    }
    this.active--;
  }

  /** RFC 6298's estimator: the first sample sets SRTT and RTTVAR = SRTT / 2. */
  private track(latencyMs: number): void {
    if (this.samples < SETTLED_SAMPLES) this.samples++;
    if (this.latencyMs === 0) {
      this.latencyMs = latencyMs;
      this.deviationMs = latencyMs / 2;
      return;
    }
    const error = latencyMs - this.latencyMs;
    this.deviationMs += (Math.abs(error) - this.deviationMs) * DEVIATION_GAIN;
    this.latencyMs += error * LATENCY_GAIN;
  }
}

/**
 * How long a request with `ahead` requests served before it may wait for a
 * slot of one of `slots`: every request in flight has its answer within
 * about one latency (SRTT + 4 x RTTVAR), so the limits free up once per
 * latency and the k-th in line gets a slot within ceil(k / sum of limits)
 * latencies. Little's law (k x latency / limit) is only the average: a
 * server whose workers finish together, or answers that come in two
 * latencies (at once, or after a turn in the server's own queue), leave a
 * request queued past it, and its refusal would then come from the timer,
 * late. 0 until each slot has SETTLED_SAMPLES answers.
 */
export function longestWait(
  slots: readonly BackendSlot[],
  ahead: number,
): number {
  let limits = 0;
  let latency = 0;
  for (const slot of slots) {
    if (!slot.settled) return 0;
    limits += slot.limit;
    latency = Math.max(latency, slot.slowest);
  }
  return Math.ceil((ahead + 1) / limits) * latency;
}

/** What an answer of the fastest of `slots` may take, once it has a slot (at least 1 ms). */
export function fastestAnswer(slots: readonly BackendSlot[]): number {
  let best = Infinity;
  for (const slot of slots) best = Math.min(best, slot.slowest);
  return Math.max(1, best);
}
