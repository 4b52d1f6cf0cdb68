import { registerAs } from '@nestjs/config';
import { z } from 'zod';
import { headerNameList, intInRange, parseEnv } from './env.js';

export const CACHE_ENV_DEFAULTS = {
  CACHE_TTL_SECONDS: '0',
  CACHE_MAX_ENTRIES: '10000',
  CACHE_MAX_BYTES: String(32 * 1024 * 1024),
  CACHE_MAX_BODY_BYTES: String(1024 * 1024),
  CACHE_KEY_HEADERS: '',
  CACHE_SCOPE: 'key',
};

export const cacheConfig = registerAs('cache', () => {
  const env = parseEnv(
    {
      CACHE_TTL_SECONDS: intInRange(0, 31_536_000),
      CACHE_MAX_ENTRIES: intInRange(1, 100_000_000),
      CACHE_MAX_BYTES: intInRange(1024, 1024 ** 4),
      CACHE_MAX_BODY_BYTES: intInRange(1, 1024 ** 3),
      CACHE_KEY_HEADERS: headerNameList,
      CACHE_SCOPE: z.enum(['key', 'global']),
    },
    CACHE_ENV_DEFAULTS,
  );
  return {
    /** 0: the cache is off. */
    ttlSeconds: env.CACHE_TTL_SECONDS,
    maxEntries: env.CACHE_MAX_ENTRIES,
    maxBytes: env.CACHE_MAX_BYTES,
    maxBodyBytes: env.CACHE_MAX_BODY_BYTES,
    keyHeaders: env.CACHE_KEY_HEADERS,
    /** `key`: entries are per API key id; `global`: shared by every client. */
    scope: env.CACHE_SCOPE,
  };
});
