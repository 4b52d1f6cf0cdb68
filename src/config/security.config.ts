import { registerAs } from '@nestjs/config';
import { z } from 'zod';
import { headerNameList, intInRange, parseEnv } from './env.js';

export const SECURITY_ENV_DEFAULTS = {
  API_KEYS: '',
  API_KEYS_FILE: '',
  METRICS_API_KEY: '',
  METRICS_PORT: '',
  RATE_LIMIT_RPS: '0',
  RATE_LIMIT_BURST: '0',
  RATE_LIMIT_UNIT: 'requests',
  RATE_LIMIT_ON_REDIS_ERROR: 'allow',
  TENANTS_FILE: '',
  CORS_ORIGINS: '',
  HEADERS_WITH_UNDERSCORES: 'drop',
  CREDENTIAL_HEADERS:
    'authorization,proxy-authorization,cookie,x-api-key,x-auth-token',
};

export const securityConfig = registerAs('security', () => {
  const env = parseEnv(
    {
      API_KEYS: z.string(),
      API_KEYS_FILE: z.string(),
      METRICS_API_KEY: z.string(),
      METRICS_PORT: z.union([z.literal(''), intInRange(1, 65535)]),
      RATE_LIMIT_RPS: intInRange(0, 1_000_000),
      RATE_LIMIT_BURST: intInRange(0, 1_000_000),
      RATE_LIMIT_UNIT: z.enum(['requests', 'items']),
      RATE_LIMIT_ON_REDIS_ERROR: z.enum(['allow', 'deny']),
      TENANTS_FILE: z.string().trim(),
      CORS_ORIGINS: z.string(),
      HEADERS_WITH_UNDERSCORES: z.enum(['drop', 'allow']),
      CREDENTIAL_HEADERS: headerNameList,
    },
    SECURITY_ENV_DEFAULTS,
  );
  const list = (raw: string) =>
    raw
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean);
  return {
    apiKeys: list(env.API_KEYS),
    apiKeysFile: env.API_KEYS_FILE || undefined,
    metricsApiKey: env.METRICS_API_KEY || undefined,
    metricsPort: env.METRICS_PORT === '' ? undefined : env.METRICS_PORT,
    rateLimitRps: env.RATE_LIMIT_RPS,
    rateLimitBurst: env.RATE_LIMIT_BURST,
    /** What RATE_LIMIT_RPS counts: requests, or items (the texts of a /batch_predict). */
    rateLimitUnit: env.RATE_LIMIT_UNIT,
    /** With REDIS_URL, when Redis cannot answer: let the request through, or 503. */
    rateLimitOnRedisError: env.RATE_LIMIT_ON_REDIS_ERROR,
    /** Tenants (YAML): their API keys, quotas in items and priority class. */
    tenantsFile: env.TENANTS_FILE || undefined,
    corsOrigins: list(env.CORS_ORIGINS),
    /** Request headers with `_` in their name never reach a backend (nginx's default). */
    dropUnderscoreHeaders: env.HEADERS_WITH_UNDERSCORES === 'drop',
    /**
     * Request headers that carry a client's credentials: part of the cache
     * key, and kept from shadow copies unless a mirror forwards credentials.
     */
    credentialHeaders: env.CREDENTIAL_HEADERS,
  };
});
