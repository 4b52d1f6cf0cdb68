import { TokenBucketStorage } from './token-bucket.storage.js';

describe('TokenBucketStorage', () => {
  afterEach(() => vi.useRealTimers());

  it('allows the burst, blocks with the time to the next token, refills at the rate', async () => {
    vi.useFakeTimers({ now: 0 });
    const storage = new TokenBucketStorage(2, 3);
    const hits = [];
    for (let i = 0; i < 3; i++) hits.push(await storage.increment('ip:a'));
    expect(hits.map((h) => [h.isBlocked, 3 - h.totalHits])).toEqual([
      [false, 2],
      [false, 1],
      [false, 0],
    ]);
    const blocked = await storage.increment('ip:a');
    expect(blocked).toMatchObject({ isBlocked: true, timeToBlockExpire: 1 });
    expect((await storage.increment('ip:b')).isBlocked).toBe(false);
    vi.setSystemTime(500);
    expect((await storage.increment('ip:a')).isBlocked).toBe(false);
    expect((await storage.increment('ip:a')).isBlocked).toBe(true);
  });

  it('forgets buckets that are full again, so memory stays bounded', async () => {
    vi.useFakeTimers({ now: 0 });
    const storage = new TokenBucketStorage(10, 10);
    for (let i = 0; i < 1000; i++) await storage.increment(`ip:${i}`);
    expect(storage.size).toBe(1000);
    vi.setSystemTime(20_000);
    await storage.increment('ip:new');
    expect(storage.size).toBe(1);
  });
});
