import { backendConfig } from './backend.config.js';
import { cacheConfig } from './cache.config.js';
import { ConfigValidationError } from './env.js';
import { securityConfig } from './security.config.js';
import { redisConfig } from './redis.config.js';
import { serverConfig } from './server.config.js';

function withEnv<T>(env: Record<string, string | undefined>, read: () => T): T {
  const saved = { ...process.env };
  for (const key of ['GATEWAY_PORT', 'PORT', 'BACKEND_URL', 'BACKEND_URLS'])
    delete process.env[key];
  Object.assign(process.env, env);
  try {
    return read();
  } finally {
    process.env = saved;
  }
}

describe('configuration', () => {
  it('has the Go gateway defaults', () => {
    const server = withEnv({}, () => serverConfig());
    expect(server).toMatchObject({
      port: 8080,
      host: '0.0.0.0',
      environment: 'production',
      maxBodyBytes: 10 * 1024 * 1024,
      keepAliveTimeoutMs: 65000,
      shutdownDelayMs: 0,
      shutdownTimeoutMs: 30000,
    });
    const backend = withEnv({}, () => backendConfig());
    expect(backend).toMatchObject({
      urls: ['http://sentiment-api-service:80'],
      timeoutMs: 10000,
      healthPath: '/healthz',
    });
  });

  it('takes PORT when GATEWAY_PORT is unset, GATEWAY_PORT first otherwise', () => {
    expect(withEnv({ PORT: '3001' }, () => serverConfig()).port).toBe(3001);
    expect(
      withEnv({ PORT: '3001', GATEWAY_PORT: '9000' }, () => serverConfig())
        .port,
    ).toBe(9000);
  });

  it('names a bad PORT when that is the one used', () => {
    expect(() => withEnv({ PORT: 'x' }, () => serverConfig())).toThrow(
      'Invalid configuration: PORT="x"; allowed: an integer from 0 to 65535',
    );
  });

  it('parses BACKEND_URLS and rejects duplicates, bad URLs and both forms at once', () => {
    expect(
      withEnv({ BACKEND_URLS: 'http://a:1/, http://b:2' }, () =>
        backendConfig(),
      ).urls,
    ).toEqual(['http://a:1', 'http://b:2']);
    expect(() =>
      withEnv({ BACKEND_URLS: 'http://a:1,http://a:1/' }, () =>
        backendConfig(),
      ),
    ).toThrow(ConfigValidationError);
    expect(() =>
      withEnv({ BACKEND_URLS: 'http://a:1,ftp://b' }, () => backendConfig()),
    ).toThrow(/bad entry: "ftp:\/\/b"/);
    expect(() =>
      withEnv({ BACKEND_URL: 'http://a', BACKEND_URLS: 'http://b' }, () =>
        backendConfig(),
      ),
    ).toThrow(/unset when BACKEND_URL is set/);
  });

  it('rejects out-of-range numbers and unknown enum values with one line', () => {
    expect(() =>
      withEnv({ MAX_BODY_BYTES: '0' }, () => serverConfig()),
    ).toThrow(
      'Invalid configuration: MAX_BODY_BYTES="0"; allowed: a value >= 1',
    );
    expect(() =>
      withEnv({ LB_POLICY: 'random' }, () => backendConfig()),
    ).toThrow(
      'Invalid configuration: LB_POLICY="random"; allowed: one of least_request, round_robin',
    );
  });

  it('reads the overload knobs: unlimited by default, a number or auto, bounds checked', () => {
    expect(withEnv({}, () => backendConfig())).toMatchObject({
      maxConcurrency: 0,
      queueMax: 100,
      queueTimeoutMs: 1000,
      adaptiveMinConcurrency: 3,
      adaptiveMaxConcurrency: 1000,
    });
    const read = (value: string) =>
      withEnv({ BACKEND_MAX_CONCURRENCY: value }, () => backendConfig())
        .maxConcurrency;
    expect(read('8')).toBe(8);
    expect(read('auto')).toBe('auto');
    expect(() => read('lots')).toThrow(
      'Invalid configuration: BACKEND_MAX_CONCURRENCY="lots"; allowed: 0 (unlimited), an integer up to 100000, or auto',
    );
    expect(() =>
      withEnv(
        { ADAPTIVE_MIN_CONCURRENCY: '50', ADAPTIVE_MAX_CONCURRENCY: '10' },
        () => backendConfig(),
      ),
    ).toThrow(
      'Invalid configuration: ADAPTIVE_MIN_CONCURRENCY="50"; allowed: at most ADAPTIVE_MAX_CONCURRENCY (10)',
    );
  });
});

describe('HEADERS_WITH_UNDERSCORES', () => {
  it('drops by default, allows when asked, and names a bad value', () => {
    expect(withEnv({}, () => securityConfig()).dropUnderscoreHeaders).toBe(
      true,
    );
    expect(
      withEnv({ HEADERS_WITH_UNDERSCORES: 'allow' }, () => securityConfig())
        .dropUnderscoreHeaders,
    ).toBe(false);
    expect(() =>
      withEnv({ HEADERS_WITH_UNDERSCORES: 'reject' }, () => securityConfig()),
    ).toThrow(
      'Invalid configuration: HEADERS_WITH_UNDERSCORES="reject"; allowed: one of drop, allow',
    );
  });
});

describe('redis and cache configuration', () => {
  const read = <T>(env: Record<string, string>, config: () => T): T => {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      return config();
    } finally {
      process.env = saved;
    }
  };

  it('is off by default: no Redis, no cache, rate limits fail open', () => {
    expect(read({}, () => redisConfig())).toEqual({
      topology: undefined,
      username: undefined,
      password: undefined,
      tls: false,
      keyPrefix: 'api-gateway:',
      timeoutMs: 50,
    });
    expect(read({}, () => cacheConfig())).toMatchObject({
      ttlSeconds: 0,
      maxEntries: 10000,
      maxBytes: 32 * 1024 * 1024,
      maxBodyBytes: 1024 * 1024,
      keyHeaders: [],
      scope: 'key',
    });
  });

  it('takes redis:// and rediss:// URLs and never prints a password in its error', () => {
    for (const url of ['redis://r:6379', 'rediss://u:p@r:6380/2', 'redis://r'])
      expect(read({ REDIS_URL: url }, () => redisConfig()).topology).toEqual({
        kind: 'single',
        url,
      });
    expect(() =>
      read({ REDIS_URL: 'http://user:hunter2@r:6379' }, () => redisConfig()),
    ).toThrow(
      'Invalid configuration: REDIS_URL="http://user:***@r:6379"; allowed: redis://[user:password@]host[:port][/db] or rediss://... (TLS)',
    );
    expect(() =>
      read({ REDIS_URL: 'redis://r:6379/x' }, () => redisConfig()),
    ).toThrow(ConfigValidationError);
  });

  it('takes an ACL user and TLS for Sentinel and Cluster; a bad REDIS_TLS is one line', () => {
    expect(
      read(
        {
          REDIS_CLUSTER_NODES: 'r0:6379',
          REDIS_USERNAME: 'gateway',
          REDIS_TLS: 'yes',
        },
        () => redisConfig(),
      ),
    ).toMatchObject({ username: 'gateway', tls: true });
    expect(() => read({ REDIS_TLS: 'on' }, () => redisConfig())).toThrow(
      /REDIS_TLS="on"/,
    );
  });

  it('takes Sentinel as a host[:port] list, the master group name (default mymaster) and its own password', () => {
    expect(
      read(
        { REDIS_SENTINELS: ' s1:26380, s2 ,[::1]:5000', REDIS_PASSWORD: 'p' },
        () => redisConfig(),
      ),
    ).toMatchObject({
      topology: {
        kind: 'sentinel',
        sentinels: [
          { host: 's1', port: 26380 },
          { host: 's2', port: 26379 },
          { host: '::1', port: 5000 },
        ],
        name: 'mymaster',
        sentinelPassword: undefined,
      },
      password: 'p',
    });
    expect(
      read(
        {
          REDIS_SENTINELS: 's1',
          REDIS_SENTINEL_NAME: 'cache',
          REDIS_SENTINEL_PASSWORD: 'sp',
        },
        () => redisConfig(),
      ).topology,
    ).toMatchObject({ name: 'cache', sentinelPassword: 'sp' });
    expect(() =>
      read({ REDIS_SENTINELS: 's1:26379,s2:99999' }, () => redisConfig()),
    ).toThrow(
      'Invalid configuration: REDIS_SENTINELS="s1:26379,s2:99999"; allowed: comma-separated host[:port] list (port default 26379), e.g. redis-sentinel:26379',
    );
    expect(() =>
      read({ REDIS_SENTINELS: 's1', REDIS_SENTINEL_NAME: 'my master' }, () =>
        redisConfig(),
      ),
    ).toThrow(
      'Invalid configuration: REDIS_SENTINEL_NAME="my master"; allowed: a master group name (no spaces or commas)',
    );
  });

  it('takes Cluster seed nodes as a host[:port] list', () => {
    expect(
      read({ REDIS_CLUSTER_NODES: 'r0:7000,r1' }, () => redisConfig()).topology,
    ).toEqual({
      kind: 'cluster',
      nodes: [
        { host: 'r0', port: 7000 },
        { host: 'r1', port: 6379 },
      ],
    });
    expect(() =>
      read({ REDIS_CLUSTER_NODES: 'redis://r0:7000' }, () => redisConfig()),
    ).toThrow(
      'Invalid configuration: REDIS_CLUSTER_NODES="redis://r0:7000"; allowed: comma-separated host[:port] list (port default 6379), e.g. redis-0:6379,redis-1:6379',
    );
  });

  it('refuses two ways to Redis at once, without printing a password', () => {
    expect(() =>
      read(
        { REDIS_URL: 'redis://:hunter2@r:6379', REDIS_SENTINELS: 's1:26379' },
        () => redisConfig(),
      ),
    ).toThrow(
      'Invalid configuration: REDIS_URL="redis://:***@r:6379" and REDIS_SENTINELS="s1:26379"; allowed: at most one of REDIS_URL, REDIS_SENTINELS, REDIS_CLUSTER_NODES (a single Redis, Sentinel or Cluster)',
    );
    expect(() =>
      read({ REDIS_SENTINELS: 's1', REDIS_CLUSTER_NODES: 'r0' }, () =>
        redisConfig(),
      ),
    ).toThrow(
      'Invalid configuration: REDIS_SENTINELS="s1" and REDIS_CLUSTER_NODES="r0"; allowed: at most one of',
    );
  });

  it('names a bad cache setting in one line', () => {
    expect(() => read({ CACHE_SCOPE: 'tenant' }, () => cacheConfig())).toThrow(
      'Invalid configuration: CACHE_SCOPE="tenant"; allowed: one of key, global',
    );
    expect(() =>
      read({ CACHE_KEY_HEADERS: 'x-model, bad header' }, () => cacheConfig()),
    ).toThrow(
      'Invalid configuration: CACHE_KEY_HEADERS="x-model, bad header"; allowed: comma-separated HTTP header names',
    );
    expect(
      read({ CACHE_KEY_HEADERS: 'X-Model, Accept' }, () => cacheConfig())
        .keyHeaders,
    ).toEqual(['x-model', 'accept']);
  });
});
