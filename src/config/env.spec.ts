import { backendConfig } from './backend.config.js';
import { ConfigValidationError } from './env.js';
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
