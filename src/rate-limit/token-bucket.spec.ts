import { TokenBuckets } from './token-bucket.js';

const take = (key: string, cost = 1, rps = 2, burst = 3) => ({
  key,
  rps,
  burst,
  cost,
});

describe('TokenBuckets', () => {
  afterEach(() => vi.useRealTimers());

  it('allows the burst, blocks with the time to the next token, refills at the rate', () => {
    vi.useFakeTimers({ now: 0 });
    const buckets = new TokenBuckets();
    const taken = [0, 1, 2].map(() => buckets.take([take('ip:a')]));
    expect(taken.map((t) => [t.allowed, t.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
    ]);
    expect(buckets.take([take('ip:a')])).toEqual({
      allowed: false,
      index: 0,
      remaining: 0,
      resetSeconds: 2,
      retryAfterSeconds: 1,
    });
    expect(buckets.take([take('ip:b')]).allowed).toBe(true);
    vi.setSystemTime(500);
    expect(buckets.take([take('ip:a')]).allowed).toBe(true);
    expect(buckets.take([take('ip:a')]).allowed).toBe(false);
  });

  it('takes a cost in items, and waits for as many tokens as it needs', () => {
    vi.useFakeTimers({ now: 0 });
    const buckets = new TokenBuckets();
    expect(buckets.take([take('t', 8, 10, 10)]).remaining).toBe(2);
    const refused = buckets.take([take('t', 5, 10, 10)]);
    expect([refused.allowed, refused.retryAfterSeconds]).toEqual([false, 1]);
    vi.setSystemTime(300);
    expect(buckets.take([take('t', 5, 10, 10)]).allowed).toBe(true);
  });

  it('takes from every bucket or from none, and reports the one with least left', () => {
    vi.useFakeTimers({ now: 0 });
    const buckets = new TokenBuckets();
    const both = [take('tenant', 1, 100, 100), take('client', 1, 1, 2)];
    expect(buckets.take(both)).toMatchObject({
      allowed: true,
      index: 1,
      remaining: 1,
    });
    expect(buckets.take(both).allowed).toBe(true);
    expect(buckets.take(both)).toMatchObject({ allowed: false, index: 1 });
    // The refusal took nothing from the tenant's bucket: 98 left, not 97.
    expect(buckets.take([take('tenant', 1, 100, 100)]).remaining).toBe(97);
  });

  it('forgets buckets that are full again, so memory stays bounded', () => {
    vi.useFakeTimers({ now: 0 });
    const buckets = new TokenBuckets();
    for (let i = 0; i < 1000; i++) buckets.take([take(`ip:${i}`, 1, 10, 10)]);
    expect(buckets.size).toBe(1000);
    vi.setSystemTime(20_000);
    buckets.take([take('ip:new', 1, 10, 10)]);
    expect(buckets.size).toBe(1);
  });
});
