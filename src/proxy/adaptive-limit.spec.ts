import { AdaptiveLimit } from './adaptive-limit.js';

function fakeClock() {
  const clock = { t: 1000, now: () => clock.t };
  return clock;
}

/** A limit created at t=1000; the clock then moves on so samples start after it. */
function make(clock: { t: number; now: () => number }, opts = options) {
  const limit = new AdaptiveLimit(opts, clock.now, () => 0);
  clock.t += 1000;
  return limit;
}

const options = {
  minLimit: 1,
  maxLimit: 100,
  sampleWindowMs: 100,
  minRttIntervalMs: 10_000,
  minRttSamples: 5,
};

/** Feeds `count` answers of `rttMs`, each started `rttMs` before it ends, `inflight` in flight. */
function feed(
  limit: AdaptiveLimit,
  clock: { t: number },
  count: number,
  rttMs: number,
  inflight = limit.limit,
  stepMs = 10,
) {
  for (let i = 0; i < count; i++) {
    clock.t += stepMs;
    limit.sample(clock.t - rttMs, rttMs, inflight);
  }
}

describe('AdaptiveLimit (Envoy gradient controller)', () => {
  it('starts at the minimum and learns the no-load latency as a low percentile of the first samples', () => {
    const clock = fakeClock();
    const limit = make(clock);
    expect(limit.limit).toBe(1);
    for (const rtt of [20, 22, 5, 200, 21]) {
      clock.t += 10;
      limit.sample(clock.t - rtt, rtt, 1);
    }
    expect(limit.minRttMs).toBe(5); // the 10th percentile of 5: the fastest
    expect(limit.limit).toBe(1);
  });

  it('ignores answers to requests sent before the measurement began', () => {
    const clock = fakeClock();
    const limit = make(clock);
    feed(limit, clock, 4, 20);
    limit.sample(900, 5, 1); // started before the phase: not counted
    expect(limit.minRttMs).toBe(0);
    feed(limit, clock, 1, 20);
    expect(limit.minRttMs).toBe(20);
  });

  it('grows while latency stays near the minimum, up to maxLimit, with gradient capped at 2', () => {
    const clock = fakeClock();
    const limit = make(clock);
    feed(limit, clock, 5, 20); // minRTT = 20
    const seen = [limit.limit];
    for (let w = 0; w < 30; w++) {
      feed(limit, clock, 10, 20); // one 100 ms window at full use
      seen.push(limit.limit);
    }
    // gradient 1.1: 1 -> 1.1 + sqrt(1.1) = 2.15 -> 2.36 + 1.54 = 3.90 -> 4.29 + 2.07 = 6.36 -> ...
    expect(seen.slice(0, 4)).toEqual([1, 2, 3, 6]);
    for (let i = 1; i < seen.length; i++)
      expect(seen[i]).toBeLessThanOrEqual(
        Math.floor((seen[i - 1] + 1) * 2 + Math.sqrt((seen[i - 1] + 1) * 2)),
      );
    expect(seen.at(-1)).toBe(100);
  });

  it('cuts the limit when latency grows, at most by half (plus headroom) per window, never below minLimit', () => {
    const clock = fakeClock();
    const limit = make(clock, { ...options, minLimit: 2 });
    feed(limit, clock, 5, 20);
    for (let w = 0; w < 20; w++) feed(limit, clock, 10, 20);
    const before = limit.limit;
    expect(before).toBe(100);
    feed(limit, clock, 10, 400); // 20x the no-load latency
    expect(limit.limit).toBe(Math.floor(50 + Math.sqrt(50))); // 100 * 0.5 + headroom
    for (let w = 0; w < 4; w++) feed(limit, clock, 10, 400);
    expect(limit.limit).toBeLessThan(10);
    for (let w = 0; w < 10; w++) feed(limit, clock, 10, 4000);
    expect(limit.limit).toBeGreaterThanOrEqual(2);
  });

  it('does not grow while fewer than half the limit are in flight (Gradient2 app-limited rule)', () => {
    const clock = fakeClock();
    const limit = make(clock);
    feed(limit, clock, 5, 20);
    for (let w = 0; w < 4; w++) feed(limit, clock, 10, 20);
    const grown = limit.limit;
    for (let w = 0; w < 10; w++)
      feed(limit, clock, 10, 20, Math.floor(grown / 2) - 1);
    expect(limit.limit).toBe(grown);
    // ...but a latency rise still cuts it.
    feed(limit, clock, 10, 200, 1);
    expect(limit.limit).toBeLessThan(grown);
  });

  it('climbs off the minimum when latency is a little above the no-load latency (noise)', () => {
    const clock = fakeClock();
    const limit = make(clock);
    feed(limit, clock, 5, 20);
    // gradient 25/28 = 0.89: one window alone would floor back to 1.
    for (let w = 0; w < 4; w++) feed(limit, clock, 10, 28);
    expect(limit.limit).toBeGreaterThanOrEqual(3);
  });

  it('re-measures the no-load latency periodically at the minimum, then restores the limit', () => {
    const clock = fakeClock();
    const limit = make(clock);
    feed(limit, clock, 5, 20);
    for (let w = 0; w < 5; w++) feed(limit, clock, 10, 20);
    const learned = limit.limit;
    clock.t += 10_000; // the interval has passed
    limit.sample(clock.t - 20, 20, learned);
    expect(limit.limit).toBe(1);
    feed(limit, clock, 5, 10, 1); // the backend got faster
    expect(limit.minRttMs).toBe(10);
    expect(limit.limit).toBe(learned);
  });

  it('re-measures at once after five windows stuck at the minimum', () => {
    const clock = fakeClock();
    const limit = make(clock);
    feed(limit, clock, 5, 5); // minRTT measured too low (5 ms)
    for (let w = 0; w < 6; w++) feed(limit, clock, 10, 50, 1);
    // The sixth window re-entered the measurement: new samples set minRTT.
    feed(limit, clock, 5, 50, 1);
    expect(limit.minRttMs).toBe(50);
  });

  it('settles within 2x of a simulated server with 4 slots of 20 ms', () => {
    const clock = fakeClock();
    const limit = new AdaptiveLimit(
      { minLimit: 1, maxLimit: 1000, minRttSamples: 25 },
      clock.now,
      () => 0.5,
    );
    const slots = 4;
    const serviceMs = 20;
    const seen: number[] = [];
    // Saturated: the limit is always full; past 4, requests queue in the server.
    for (let step = 0; step < 2000; step++) {
      clock.t += 2;
      const inflight = limit.limit;
      const rtt = serviceMs * Math.max(1, inflight / slots);
      limit.sample(clock.t - rtt, rtt, inflight);
      if (clock.t > 2000) seen.push(limit.limit);
    }
    expect(Math.min(...seen)).toBeGreaterThanOrEqual(1);
    const settled = seen.filter((l) => l >= slots && l <= 2 * slots).length;
    expect(settled / seen.length).toBeGreaterThan(0.9);
  });
});
