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
  /** Keeps `answer` for `ttlMs` (its freshness lifetime, at most CACHE_TTL_SECONDS). */
  set(key: string, answer: CachedAnswer, ttlMs: number): Promise<void>;
  /** Entries held (memory store only). */
  readonly size?: number;
}

/**
 * What an entry costs besides its body, header and key bytes: the entry and
 * header objects, the Buffer's own objects and the LRU's map entry
 * (measured on Node 20 and 24 over 20,000 entries: 0.6-0.85 KB each; the
 * LRU's arrays, sized once by CACHE_MAX_ENTRIES, come on top).
 */
export const ENTRY_OVERHEAD_BYTES = 896;

/**
 * Per-pod LRU bounded by entries and bytes (CACHE_MAX_ENTRIES,
 * CACHE_MAX_BYTES), counting what an entry really holds: the body is copied
 * into memory of its own (a backend's answer is often a slice of a 64 KB
 * socket read, which a stored slice would keep whole), plus the key, the
 * headers and the entry's overhead.
 */
export class MemoryCacheStore implements CacheStore {
  private readonly lru: LRUCache<string, CachedAnswer>;

  constructor(options: { maxEntries: number; maxBytes: number }) {
    this.lru = new LRUCache({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (answer, key) => entryBytes(key, answer),
    });
  }

  get size(): number {
    return this.lru.size;
  }

  /** Bytes held, by the same count as CACHE_MAX_BYTES. */
  get bytes(): number {
    return this.lru.calculatedSize;
  }

  get(key: string): CachedAnswer | undefined {
    return this.lru.get(key);
  }

  set(key: string, answer: CachedAnswer, ttlMs: number): Promise<void> {
    this.lru.set(
      key,
      { ...answer, body: ownCopy(answer.body) },
      { ttl: ttlMs },
    );
    return Promise.resolve();
  }
}

/** The bytes an entry holds, as CACHE_MAX_BYTES counts them. */
export function entryBytes(key: string, answer: CachedAnswer): number {
  let headers = 0;
  for (const name in answer.headers) {
    const value = answer.headers[name];
    headers +=
      name.length +
      (Array.isArray(value) ? value.join('').length : value.length);
  }
  return (
    answer.body.length + key.length * 2 + headers * 2 + ENTRY_OVERHEAD_BYTES
  );
}

/** The body in an ArrayBuffer of its exact size (never a view on a larger one). */
function ownCopy(body: Buffer): Buffer {
  if (body.byteOffset === 0 && body.buffer.byteLength === body.length)
    return body;
  const copy = Buffer.allocUnsafeSlow(body.length);
  body.copy(copy);
  return copy;
}

/**
 * Entries in the shared Redis, one string per key with a TTL:
 * [4-byte length][JSON {status, headers, storedAt}][body bytes].
 */
export class RedisCacheStore implements CacheStore {
  constructor(
    private readonly client: RedisClient,
    private readonly keyPrefix: string,
  ) {}

  async get(key: string): Promise<CachedAnswer | undefined> {
    const raw = await this.client.getBuffer(this.keyPrefix + key);
    return raw === null ? undefined : decode(raw);
  }

  async set(key: string, answer: CachedAnswer, ttlMs: number): Promise<void> {
    await this.client.set(this.keyPrefix + key, encode(answer), 'PX', ttlMs);
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
