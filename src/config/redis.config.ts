import { registerAs } from '@nestjs/config';
import { z } from 'zod';
import { ConfigValidationError, intInRange, parseEnv } from './env.js';

export const REDIS_ENV_DEFAULTS = {
  REDIS_URL: '',
  REDIS_PASSWORD: '',
  REDIS_KEY_PREFIX: 'api-gateway:',
  REDIS_TIMEOUT_MS: '50',
};

export const redisConfig = registerAs('redis', () => {
  const env = parseEnv(
    {
      REDIS_URL: z.string().trim(),
      REDIS_PASSWORD: z.string(),
      REDIS_KEY_PREFIX: z.string().max(200, 'at most 200 characters'),
      REDIS_TIMEOUT_MS: intInRange(1, 60_000),
    },
    REDIS_ENV_DEFAULTS,
  );
  const url = env.REDIS_URL === '' ? undefined : redisUrl(env.REDIS_URL);
  return {
    /** Unset: every feature keeps its state in memory, per pod. */
    url,
    password: env.REDIS_PASSWORD || undefined,
    keyPrefix: env.REDIS_KEY_PREFIX,
    timeoutMs: env.REDIS_TIMEOUT_MS,
  };
});

/** Validates REDIS_URL; the error line never shows its password. */
function redisUrl(raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  const db = url?.pathname.replace(/^\//, '') ?? '';
  if (
    url &&
    (url.protocol === 'redis:' || url.protocol === 'rediss:') &&
    url.hostname !== '' &&
    /^\d*$/.test(db)
  ) {
    return raw;
  }
  throw new ConfigValidationError(
    `Invalid configuration: REDIS_URL=${JSON.stringify(redactUrl(raw))}; allowed: redis://[user:password@]host[:port][/db] or rediss://... (TLS)`,
  );
}

/** The URL with its password replaced by `***`, for logs and errors. */
export function redactUrl(raw: string): string {
  return raw.replace(/^([a-z]+:\/\/[^:/@]*:)[^@/]*@/i, '$1***@');
}
