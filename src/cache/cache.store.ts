import type { RedisClient } from '../redis/redis.service.js';
import { LRUCache } from 'lru-cache';

/** A backend answer as it is kept: served byte for byte on a hit. */
export interface CachedAnswer {
  status: number;
  /** The backend's end-to-end headers. */
  headers: Record<string, string | string[]>;
  body: Buffer;
  /** Date.now() when it was stored (for `Age`). */
  storedAt: number;
}

export interface CacheStore {
  /** The memory store answers at once; a hit then waits for nothing. */
  get(
    key: string,
  ): CachedAnswer | undefined | Promise<CachedAnswer | undefined>;
  set(key: string, answer: CachedAnswer): Promise<void>;
  /** Entries held (memory store only). */
  readonly size?: number;
}

/** Per-pod LRU bounded by entries and bytes (CACHE_MAX_ENTRIES, CACHE_MAX_BYTES). */
export class MemoryCacheStore implements CacheStore {
  private readonly lru: LRUCache<string, CachedAnswer>;

  constructor(options: {
    maxEntries: number;
    maxBytes: number;
    ttlMs: number;
  }) {
    this.lru = new LRUCache({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (answer, key) =>
        answer.body.length + key.length + JSON.stringify(answer.headers).length,
      ttl: options.ttlMs,
    });
  }

  get size(): number {
    return this.lru.size;
  }

  get(key: string): CachedAnswer | undefined {
    return this.lru.get(key);
  }

  set(key: string, answer: CachedAnswer): Promise<void> {
    this.lru.set(key, answer);
    return Promise.resolve();
  }
}

/**
 * Entries in the shared Redis, one string per key with a TTL:
 * [4-byte length][JSON {status, headers, storedAt}][body bytes].
 */
export class RedisCacheStore implements CacheStore {
  constructor(
    private readonly client: RedisClient,
    private readonly keyPrefix: string,
    private readonly ttlMs: number,
  ) {}

  async get(key: string): Promise<CachedAnswer | undefined> {
    const raw = await this.client.getBuffer(this.keyPrefix + key);
    return raw === null ? undefined : decode(raw);
  }

  async set(key: string, answer: CachedAnswer): Promise<void> {
    await this.client.set(
      this.keyPrefix + key,
      encode(answer),
      'PX',
      this.ttlMs,
    );
  }
}

function encode(answer: CachedAnswer): Buffer {
  const meta = Buffer.from(
    JSON.stringify({
      status: answer.status,
      headers: answer.headers,
      storedAt: answer.storedAt,
    }),
  );
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(meta.length);
  return Buffer.concat([length, meta, answer.body]);
}

function decode(raw: Buffer): CachedAnswer {
  const metaEnd = 4 + raw.readUInt32BE(0);
  const meta = JSON.parse(raw.subarray(4, metaEnd).toString()) as Omit<
    CachedAnswer,
    'body'
  >;
  return { ...meta, body: raw.subarray(metaEnd) };
}
