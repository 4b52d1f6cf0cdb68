import { registerAs } from '@nestjs/config';
import { z } from 'zod';
import { booleanString, configError, intInRange, parseEnv } from './env.js';

export const REDIS_ENV_DEFAULTS = {
  REDIS_URL: '',
  REDIS_SENTINELS: '',
  REDIS_SENTINEL_NAME: 'mymaster',
  REDIS_SENTINEL_PASSWORD: '',
  REDIS_CLUSTER_NODES: '',
  REDIS_USERNAME: '',
  REDIS_PASSWORD: '',
  REDIS_TLS: 'false',
  REDIS_KEY_PREFIX: 'api-gateway:',
  REDIS_TIMEOUT_MS: '50',
};

export interface HostPort {
  host: string;
  port: number;
}

/** How the one connection reaches Redis: set by exactly one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES. */
export type RedisTopology =
  | { kind: 'single'; url: string }
  | {
      kind: 'sentinel';
      sentinels: HostPort[];
      name: string;
      sentinelPassword?: string;
    }
  | { kind: 'cluster'; nodes: HostPort[] };

const TOPOLOGY_VARS = [
  'REDIS_URL',
  'REDIS_SENTINELS',
  'REDIS_CLUSTER_NODES',
] as const;

export const redisConfig = registerAs('redis', () => {
  const env = parseEnv(
    {
      REDIS_URL: z.string().trim(),
      REDIS_SENTINELS: hostPortList(26379, 'redis-sentinel:26379'),
      REDIS_SENTINEL_NAME: z
        .string()
        .trim()
        .regex(/^[^\s,]+$/, 'a master group name (no spaces or commas)'),
      REDIS_SENTINEL_PASSWORD: z.string(),
      REDIS_CLUSTER_NODES: hostPortList(6379, 'redis-0:6379,redis-1:6379'),
      REDIS_USERNAME: z.string().trim(),
      REDIS_PASSWORD: z.string(),
      REDIS_TLS: booleanString,
      REDIS_KEY_PREFIX: z.string().max(200, 'at most 200 characters'),
      REDIS_TIMEOUT_MS: intInRange(1, 60_000),
    },
    REDIS_ENV_DEFAULTS,
  );
  const set = TOPOLOGY_VARS.filter((name) => env[name].length > 0);
  if (set.length > 1) {
    throw configError(
      Object.fromEntries(
        set.map((name) => [name, redactUrl(String(process.env[name]).trim())]),
      ),
      `at most one of ${TOPOLOGY_VARS.join(', ')} (a single Redis, Sentinel or Cluster)`,
    );
  }
  let topology: RedisTopology | undefined;
  if (env.REDIS_URL !== '')
    topology = { kind: 'single', url: redisUrl(env.REDIS_URL) };
  else if (env.REDIS_SENTINELS.length > 0)
    topology = {
      kind: 'sentinel',
      sentinels: env.REDIS_SENTINELS,
      name: env.REDIS_SENTINEL_NAME,
      sentinelPassword: env.REDIS_SENTINEL_PASSWORD || undefined,
    };
  else if (env.REDIS_CLUSTER_NODES.length > 0)
    topology = { kind: 'cluster', nodes: env.REDIS_CLUSTER_NODES };
  return {
    /** Unset: every feature keeps its state in memory, per pod. */
    topology,
    /** ACL user and password of Redis when not in the URL (every node, with Sentinel or Cluster). */
    username: env.REDIS_USERNAME || undefined,
    password: env.REDIS_PASSWORD || undefined,
    /** TLS to every Redis node (and to the Sentinels); `rediss://` turns it on for REDIS_URL too. */
    tls: env.REDIS_TLS,
    keyPrefix: env.REDIS_KEY_PREFIX,
    timeoutMs: env.REDIS_TIMEOUT_MS,
  };
});

/** `host[:port],...` ('' is the empty list); IPv6 hosts in brackets. */
function hostPortList(defaultPort: number, example: string) {
  const allowed = `comma-separated host[:port] list (port default ${defaultPort}), e.g. ${example}`;
  return z
    .string()
    .trim()
    .transform((raw, ctx) => {
      const entries = raw === '' ? [] : raw.split(',').map((e) => e.trim());
      const parsed = entries.map((entry) => hostPort(entry, defaultPort));
      if (parsed.every((p) => p !== undefined)) return parsed;
      ctx.addIssue({ code: 'custom', message: allowed });
      return z.NEVER;
    });
}

function hostPort(entry: string, defaultPort: number): HostPort | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/i.exec(
    entry,
  );
  if (!match) return undefined;
  const port = match[2] === undefined ? defaultPort : Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1].replace(/^\[|\]$/g, ''), port };
}

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
  throw configError(
    { REDIS_URL: redactUrl(raw) },
    'redis://[user:password@]host[:port][/db] or rediss://... (TLS)',
  );
}

/** The URL with its password replaced by `***`, for logs and errors. */
export function redactUrl(raw: string): string {
  return raw.replace(/^([a-z]+:\/\/[^:/@]*:)[^@/]*@/i, '$1***@');
}
