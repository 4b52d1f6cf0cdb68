import { TokenBuckets } from './token-bucket.js';

describe('TokenBuckets', () => {
  afterEach(() => vi.useRealTimers());

  it('allows the burst, blocks with the time to the next token, refills at the rate', () => {
    vi.useFakeTimers({ now: 0 });
    const buckets = new TokenBuckets(2, 3);
    const taken = [0, 1, 2].map(() => buckets.take('ip:a'));
    expect(taken.map((t) => [t.allowed, t.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
    ]);
    expect(buckets.take('ip:a')).toEqual({
      allowed: false,
      remaining: 0,
      resetSeconds: 2,
      retryAfterSeconds: 1,
    });
    expect(buckets.take('ip:b').allowed).toBe(true);
    vi.setSystemTime(500);
    expect(buckets.take('ip:a').allowed).toBe(true);
    expect(buckets.take('ip:a').allowed).toBe(false);
  });

  it('forgets buckets that are full again, so memory stays bounded', () => {
    vi.useFakeTimers({ now: 0 });
    const buckets = new TokenBuckets(10, 10);
    for (let i = 0; i < 1000; i++) buckets.take(`ip:${i}`);
    expect(buckets.size).toBe(1000);
    vi.setSystemTime(20_000);
    buckets.take('ip:new');
    expect(buckets.size).toBe(1);
  });
});
