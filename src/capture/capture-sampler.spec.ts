import { CaptureSampler, keyFraction } from './capture-sampler.js';

describe('CaptureSampler', () => {
  it('spreads keys evenly over [0, 1)', () => {
    const buckets = new Array<number>(10).fill(0);
    for (let i = 0; i < 10_000; i++)
      buckets[Math.floor(keyFraction(`user-${i}`) * 10)]++;
    // 1000 per bucket expected, sd ~30.
    for (const count of buckets)
      expect(Math.abs(count - 1000)).toBeLessThan(150);
  });

  it('keeps a key in or out for good, and a higher rate keeps those already in', () => {
    const low = new CaptureSampler(0.3, 'x-user');
    const high = new CaptureSampler(0.6, 'x-user');
    for (let i = 0; i < 200; i++) {
      const headers = { 'x-user': `u${i}` };
      const first = low.sampled(headers);
      expect(low.sampled(headers)).toBe(first);
      if (first) expect(high.sampled(headers)).toBe(true);
    }
  });

  it('draws per request without the key header, and always at rate 1', () => {
    const sampler = new CaptureSampler(0.5, 'x-user');
    let sampled = 0;
    for (let i = 0; i < 2000; i++) if (sampler.sampled({})) sampled++;
    expect(sampled).toBeGreaterThan(800);
    expect(sampled).toBeLessThan(1200);
    const all = new CaptureSampler(1, 'x-user');
    expect(all.sampled({ 'x-user': 'anyone' })).toBe(true);
  });
});
