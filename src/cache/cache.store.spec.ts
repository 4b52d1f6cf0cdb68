import {
  type CachedAnswer,
  ENTRY_OVERHEAD_BYTES,
  entryBytes,
  MemoryCacheStore,
} from './cache.store.js';

const answer = (body: Buffer): CachedAnswer => ({
  status: 200,
  headers: { 'content-type': 'application/json' },
  body,
  storedAt: Date.now(),
});

describe('MemoryCacheStore', () => {
  it('keeps a body in memory of its own: a slice of a larger read is copied, so it does not hold the read', async () => {
    const read = Buffer.alloc(64 * 1024, 'x'); // a socket read
    const slice = read.subarray(100, 100 + 8192);
    const store = new MemoryCacheStore({ maxEntries: 10, maxBytes: 1e9 });
    await store.set('k', answer(slice), 60_000);
    const kept = store.get('k')!.body;
    expect(kept.equals(slice)).toBe(true);
    expect(kept.buffer).not.toBe(read.buffer);
    expect(kept.buffer.byteLength).toBe(8192);
    // A body already alone in its memory is kept as it is.
    const alone = Buffer.allocUnsafeSlow(100);
    await store.set('a', answer(alone), 60_000);
    expect(store.get('a')!.body).toBe(alone);
  });

  it('counts what an entry holds against CACHE_MAX_BYTES: body, key, headers and overhead', async () => {
    const key = 'k'.repeat(64);
    const bytes = entryBytes(key, answer(Buffer.alloc(1000)));
    expect(bytes).toBeGreaterThan(1000 + 64 + ENTRY_OVERHEAD_BYTES);
    // Room for exactly three such entries: a fourth evicts the oldest.
    const store = new MemoryCacheStore({
      maxEntries: 100,
      maxBytes: bytes * 3,
    });
    for (const name of ['a', 'b', 'c', 'd'])
      await store.set(name.repeat(64), answer(Buffer.alloc(1000)), 60_000);
    expect(store.size).toBe(3);
    expect(store.bytes).toBeLessThanOrEqual(bytes * 3);
    expect(store.get('a'.repeat(64))).toBeUndefined();
  });

  it('drops an entry once its own lifetime has passed', async () => {
    const store = new MemoryCacheStore({ maxEntries: 10, maxBytes: 1e9 });
    await store.set('short', answer(Buffer.from('x')), 5);
    await store.set('long', answer(Buffer.from('y')), 60_000);
    // The lifetime is the event: 5 ms, then a little for the clock's resolution.
    await new Promise((resolve) => setTimeout(resolve, 25));
    expect(store.get('short')).toBeUndefined();
    expect(store.get('long')).toBeDefined();
  });
});
