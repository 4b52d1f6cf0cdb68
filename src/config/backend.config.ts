import { registerAs } from '@nestjs/config';
import { z } from 'zod';
import { booleanString, configError, intInRange, parseEnv } from './env.js';

export const BACKEND_ENV_DEFAULTS = {
  BACKEND_URL: 'http://sentiment-api-service:80',
  BACKEND_URLS: '',
  BACKEND_TIMEOUT_MS: '10000',
  BACKEND_TRY_TIMEOUT_MS: '0',
  BACKEND_HEALTH_PATH: '/healthz',
  HEALTH_CHECK_INTERVAL_MS: '5000',
  HEALTH_CHECK_TIMEOUT_MS: '1000',
  UNHEALTHY_THRESHOLD: '3',
  HEALTHY_THRESHOLD: '2',
  EJECT_AFTER_FAILURES: '5',
  EJECT_BASE_MS: '30000',
  MAX_EJECTED_PERCENT: '50',
  LB_POLICY: 'least_request',
  RETRY_ATTEMPTS: '2',
  RETRY_ON_5XX: 'true',
  RETRY_BUDGET_PERCENT: '20',
  READINESS_REQUIRES_BACKEND: 'false',
  BACKEND_MAX_CONCURRENCY: '0',
  QUEUE_MAX: '100',
  QUEUE_TIMEOUT_MS: '1000',
  ADAPTIVE_MIN_CONCURRENCY: '3',
  ADAPTIVE_MAX_CONCURRENCY: '1000',
};

const MAX_CONCURRENCY = 100_000;

/** 0 (unlimited), a fixed limit, or `auto` (learned from latency). */
const concurrencyLimit = z
  .string()
  .trim()
  .regex(
    /^(\d+|auto)$/,
    `0 (unlimited), an integer up to ${MAX_CONCURRENCY}, or auto`,
  )
  .transform((v) => (v === 'auto' ? v : Number(v)))
  .pipe(z.union([z.literal('auto'), z.number().int().max(MAX_CONCURRENCY)]));

/** A backend URL: http(s), no query or fragment (also the routes file's `urls`). */
export const httpUrl = z
  .string()
  .trim()
  .refine((value) => {
    try {
      const url = new URL(value);
      return (
        (url.protocol === 'http:' || url.protocol === 'https:') &&
        !url.search &&
        !url.hash
      );
    } catch {
      return false;
    }
  }, 'an http:// or https:// URL without query or fragment');

export const backendConfig = registerAs('backend', () => {
  const bothSet =
    Boolean(process.env.BACKEND_URL) && Boolean(process.env.BACKEND_URLS);
  if (bothSet) {
    throw configError(
      { BACKEND_URLS: process.env.BACKEND_URLS },
      'unset when BACKEND_URL is set (use one of the two)',
    );
  }
  const env = parseEnv(
    {
      BACKEND_URL: httpUrl,
      BACKEND_URLS: z.string(),
      BACKEND_TIMEOUT_MS: intInRange(1, 3_600_000),
      BACKEND_TRY_TIMEOUT_MS: intInRange(0, 3_600_000),
      BACKEND_HEALTH_PATH: z
        .string()
        .trim()
        .regex(/^\/[^\s?#]*$/, 'a path starting with /'),
      HEALTH_CHECK_INTERVAL_MS: intInRange(100, 3_600_000),
      HEALTH_CHECK_TIMEOUT_MS: intInRange(1, 600_000),
      UNHEALTHY_THRESHOLD: intInRange(1, 100),
      HEALTHY_THRESHOLD: intInRange(1, 100),
      EJECT_AFTER_FAILURES: intInRange(1, 1000),
      EJECT_BASE_MS: intInRange(1, 3_600_000),
      MAX_EJECTED_PERCENT: intInRange(0, 100),
      LB_POLICY: z.enum(['least_request', 'round_robin']),
      RETRY_ATTEMPTS: intInRange(0, 10),
      RETRY_ON_5XX: booleanString,
      RETRY_BUDGET_PERCENT: intInRange(0, 100),
      READINESS_REQUIRES_BACKEND: booleanString,
      BACKEND_MAX_CONCURRENCY: concurrencyLimit,
      QUEUE_MAX: intInRange(0, MAX_CONCURRENCY),
      QUEUE_TIMEOUT_MS: intInRange(1, 3_600_000),
      ADAPTIVE_MIN_CONCURRENCY: intInRange(1, MAX_CONCURRENCY),
      ADAPTIVE_MAX_CONCURRENCY: intInRange(1, MAX_CONCURRENCY),
    },
    BACKEND_ENV_DEFAULTS,
  );
  if (env.ADAPTIVE_MIN_CONCURRENCY > env.ADAPTIVE_MAX_CONCURRENCY) {
    throw configError(
      { ADAPTIVE_MIN_CONCURRENCY: env.ADAPTIVE_MIN_CONCURRENCY },
      `at most ADAPTIVE_MAX_CONCURRENCY (${env.ADAPTIVE_MAX_CONCURRENCY})`,
    );
  }
  const urls = env.BACKEND_URLS
    ? parseUrlList(env.BACKEND_URLS)
    : [env.BACKEND_URL];
  return {
    urls: urls.map((url) => url.replace(/\/+$/, '')),
    timeoutMs: env.BACKEND_TIMEOUT_MS,
    // 0: each try may use what is left of BACKEND_TIMEOUT_MS.
    tryTimeoutMs: env.BACKEND_TRY_TIMEOUT_MS,
    healthPath: env.BACKEND_HEALTH_PATH,
    healthCheckIntervalMs: env.HEALTH_CHECK_INTERVAL_MS,
    healthCheckTimeoutMs: env.HEALTH_CHECK_TIMEOUT_MS,
    unhealthyThreshold: env.UNHEALTHY_THRESHOLD,
    healthyThreshold: env.HEALTHY_THRESHOLD,
    ejectAfterFailures: env.EJECT_AFTER_FAILURES,
    ejectBaseMs: env.EJECT_BASE_MS,
    maxEjectedPercent: env.MAX_EJECTED_PERCENT,
    lbPolicy: env.LB_POLICY,
    retryAttempts: env.RETRY_ATTEMPTS,
    retryOn5xx: env.RETRY_ON_5XX,
    retryBudgetPercent: env.RETRY_BUDGET_PERCENT,
    readinessRequiresBackend: env.READINESS_REQUIRES_BACKEND,
    /** In-flight requests per backend: 0 = unlimited (no admission at all), or `auto`. */
    maxConcurrency: env.BACKEND_MAX_CONCURRENCY,
    queueMax: env.QUEUE_MAX,
    queueTimeoutMs: env.QUEUE_TIMEOUT_MS,
    adaptiveMinConcurrency: env.ADAPTIVE_MIN_CONCURRENCY,
    adaptiveMaxConcurrency: env.ADAPTIVE_MAX_CONCURRENCY,
  };
});

function parseUrlList(raw: string): string[] {
  const urls = raw
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  const seen = new Set<string>();
  for (const url of urls) {
    const ok = httpUrl.safeParse(url).success;
    const key = ok
      ? new URL(url).origin + new URL(url).pathname.replace(/\/+$/, '')
      : url;
    if (!ok || seen.has(key)) {
      throw configError(
        { BACKEND_URLS: raw },
        `a comma-separated list of distinct http(s) URLs (bad entry: ${JSON.stringify(url)})`,
      );
    }
    seen.add(key);
  }
  if (urls.length === 0) {
    throw configError({ BACKEND_URLS: raw }, 'at least one http(s) URL');
  }
  return urls;
}
