import request from 'supertest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, withGateway } from './support/gateway.js';
import { freePort } from './support/net.js';
import { spawnGateway } from './support/process.js';
import { Upstream } from './support/upstream.js';
import { sleep, until } from './support/wait.js';

const KEY_A = 'key-a-0123456789abcdef';
const KEY_B = 'key-b-fedcba9876543210';
const shortId = (key: string) =>
  createHash('sha256').update(key).digest('hex').slice(0, 8);
const PREDICT = '{"request":{"text":"hi"}}';

describe('Access control: API keys (e2e)', () => {
  const stack = withGateway({ API_KEYS: `${KEY_A}, ${KEY_B}` });

  it('answers 401 JSON with WWW-Authenticate when no key is sent, the backend never called', async () => {
    const before = stack.upstream.received.length;
    const res = await request(stack.gw.url)
      .post('/predict')
      .set('x-request-id', 'no-key-1')
      .send(PREDICT)
      .expect(401);
    expect(res.headers['www-authenticate']).toBe('Bearer realm="api-gateway"');
    expect(res.body).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message:
        'an API key is required (Authorization: Bearer <key> or X-API-Key)',
      request_id: 'no-key-1',
    });
    expect(stack.upstream.received.length).toBe(before);
  });

  it.each([
    ['a wrong Bearer key', { authorization: 'Bearer nope' }],
    ['a wrong X-API-Key', { 'x-api-key': 'nope' }],
    ['a key prefix', { 'x-api-key': KEY_A.slice(0, -1) }],
    ['a key with a suffix', { 'x-api-key': KEY_A + 'x' }],
  ])('answers 401 invalid_token for %s', async (_what, headers) => {
    const res = await request(stack.gw.url)
      .post('/predict')
      .set(headers)
      .send(PREDICT)
      .expect(401);
    expect(res.headers['www-authenticate']).toBe(
      'Bearer realm="api-gateway", error="invalid_token"',
    );
    expect(res.body.message).toBe('invalid API key');
  });

  it.each([
    ['Authorization: Bearer', { authorization: `Bearer ${KEY_A}` }],
    ['lower-case bearer', { authorization: `bearer ${KEY_B}` }],
    ['X-API-Key', { 'x-api-key': KEY_B }],
  ])(
    'lets a known key in through %s, and keeps it from the backend',
    async (_what, headers) => {
      await request(stack.gw.url)
        .post('/predict')
        .set(headers)
        .send(PREDICT)
        .expect(200);
      const sent = stack.upstream.received.at(-1)!.headers;
      expect(sent.authorization).toBeUndefined();
      expect(sent['x-api-key']).toBeUndefined();
    },
  );

  it('keeps /health/* open and / closed', async () => {
    await request(stack.gw.url).get('/health/live').expect(200);
    await request(stack.gw.url).get('/health/ready').expect(200);
    const health = await request(stack.gw.url).get('/health');
    expect(health.status).not.toBe(401);
    await request(stack.gw.url).get('/').expect(401);
    await request(stack.gw.url).get('/').set('x-api-key', KEY_A).expect(200);
  });

  it('leaves /metrics open when METRICS_API_KEY is unset', async () => {
    await request(stack.gw.url).get('/metrics').expect(200);
  });
});

describe('Access control: keys never logged (process e2e)', () => {
  it('logs the short id of the key, never the key, for good and bad keys', async () => {
    const upstream = await new Upstream().start();
    const gw = await spawnGateway({
      BACKEND_URL: upstream.url,
      API_KEYS: KEY_A,
      LOG_LEVEL: 'debug',
      HEALTH_CHECK_INTERVAL_MS: '60000',
    });
    try {
      await request(gw.url)
        .post('/predict')
        .set('authorization', `Bearer ${KEY_A}`)
        .set('x-request-id', 'with-bearer')
        .send(PREDICT)
        .expect(200);
      await request(gw.url)
        .post('/predict')
        .set('x-api-key', KEY_A)
        .set('x-request-id', 'with-header')
        .send(PREDICT)
        .expect(200);
      await request(gw.url)
        .post('/predict')
        .set('x-api-key', 'wrong-secret-value')
        .set('x-request-id', 'with-wrong')
        .send(PREDICT)
        .expect(401);
      const line = await gw.waitForLine((l) => l.request_id === 'with-wrong');
      expect(line.status).toBe(401);
      expect(line).not.toHaveProperty('key_id');
      const good = await gw.waitForLine(
        (l) => l.request_id === 'with-bearer' && l.msg === 'request completed',
      );
      expect(good.key_id).toBe(shortId(KEY_A));
      const text = gw.lines.map((l) => JSON.stringify(l)).join('\n');
      expect(text).not.toContain(KEY_A);
      expect(text).not.toContain('wrong-secret-value');
      expect(text).toContain(shortId(KEY_A));
    } finally {
      await gw.stop();
      await upstream.stop();
    }
  });
});

describe('Access control: API_KEYS_FILE (e2e)', () => {
  let dir: string;
  let upstream: Upstream;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gw-keys-'));
    upstream = await new Upstream().start();
  });

  afterAll(async () => {
    await upstream.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads one key per line (comments and blanks ignored) and reloads on change', async () => {
    const file = join(dir, 'keys');
    writeFileSync(file, `# team a\n${KEY_A}\n\n`);
    const gw = await startGateway({
      BACKEND_URL: upstream.url,
      API_KEYS_FILE: file,
    });
    try {
      const call = (key: string) =>
        request(gw.url).post('/predict').set('x-api-key', key).send(PREDICT);
      expect((await call(KEY_A)).status).toBe(200);
      expect((await call(KEY_B)).status).toBe(401);
      expect((await call('# team a')).status).toBe(401);
      writeFileSync(file, `${KEY_B}\r\n`);
      await until(async () => (await call(KEY_B)).status === 200, 5000, 200);
      expect((await call(KEY_B)).status).toBe(200);
      expect((await call(KEY_A)).status).toBe(401);
      // A file that disappears keeps the last good keys.
      rmSync(file);
      await sleep(2500);
      expect((await call(KEY_B)).status).toBe(200);
    } finally {
      await gw.close();
    }
  });

  it('refuses to boot with an unreadable file, naming the variable', async () => {
    await expect(
      startGateway({
        BACKEND_URL: upstream.url,
        API_KEYS_FILE: join(dir, 'missing'),
      }),
    ).rejects.toThrow(
      `Invalid configuration: API_KEYS_FILE="${join(dir, 'missing')}"; allowed: a readable file with one key per line`,
    );
  });
});

describe('Access control: /metrics (e2e)', () => {
  let upstream: Upstream;

  beforeAll(async () => {
    upstream = await new Upstream().start();
  });

  afterAll(async () => {
    await upstream.stop();
  });

  it('METRICS_API_KEY restricts /metrics to that key (not the API keys)', async () => {
    const gw = await startGateway({
      BACKEND_URL: upstream.url,
      API_KEYS: KEY_A,
      METRICS_API_KEY: 'scrape-secret',
    });
    try {
      const res = await request(gw.url).get('/metrics').expect(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="metrics"');
      expect(res.body.request_id).toBe(res.headers['x-request-id']);
      await request(gw.url).get('/metrics').set('x-api-key', KEY_A).expect(401);
      await request(gw.url)
        .get('/metrics')
        .set('authorization', 'Bearer scrape-secret')
        .expect(200);
    } finally {
      await gw.close();
    }
  });

  it('METRICS_PORT moves /metrics to its own port (404 on the main port)', async () => {
    const port = await freePort();
    const gw = await startGateway({
      BACKEND_URL: upstream.url,
      METRICS_PORT: String(port),
      METRICS_API_KEY: 'scrape-secret',
      HOST: '127.0.0.1',
    });
    try {
      const main = await request(gw.url).get('/metrics').expect(404);
      expect(main.body.message).toBe('Cannot GET /metrics');
      const metricsUrl = `http://127.0.0.1:${port}`;
      await request(metricsUrl).get('/metrics').expect(401);
      const res = await request(metricsUrl)
        .get('/metrics')
        .set('x-api-key', 'scrape-secret')
        .expect(200);
      expect(res.text).toMatch(/^process_resident_memory_bytes \d+/m);
      const other = await request(metricsUrl).get('/predict').expect(404);
      expect(other.body).toMatchObject({ statusCode: 404 });
    } finally {
      await gw.close();
    }
    // The metrics port is released on shutdown.
    await expect(freePort(port)).resolves.toBe(port);
  });
});

describe('Rate limiting (e2e)', () => {
  let upstream: Upstream;

  beforeAll(async () => {
    upstream = await new Upstream().start();
  });

  afterAll(async () => {
    await upstream.stop();
  });

  it('allows the burst, then 429 with Retry-After and RateLimit-* headers, then refills', async () => {
    const gw = await startGateway({
      BACKEND_URL: upstream.url,
      RATE_LIMIT_RPS: '2',
      RATE_LIMIT_BURST: '3',
    });
    try {
      const remaining: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await request(gw.url)
          .post('/predict')
          .send(PREDICT)
          .expect(200);
        expect(res.headers['ratelimit-limit']).toBe('3');
        remaining.push(String(res.headers['ratelimit-remaining']));
      }
      expect(remaining).toEqual(['2', '1', '0']);
      const limited = await request(gw.url)
        .post('/predict')
        .set('x-request-id', 'too-many')
        .send(PREDICT)
        .expect(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(limited.headers['ratelimit-remaining']).toBe('0');
      expect(limited.body).toEqual({
        statusCode: 429,
        error: 'Too Many Requests',
        message: expect.stringMatching(/^rate limit exceeded, retry in \d+ s$/),
        request_id: 'too-many',
      });
      // Probes and scrapes are never limited.
      await request(gw.url).get('/health/live').expect(200);
      await request(gw.url).get('/metrics').expect(200);
      await sleep(600); // 2 rps: one token back after 500 ms
      await request(gw.url).post('/predict').send(PREDICT).expect(200);
    } finally {
      await gw.close();
    }
  });

  it('limits per client IP when keys are off', async () => {
    const gw = await startGateway({
      BACKEND_URL: upstream.url,
      RATE_LIMIT_RPS: '1',
      HOST: '0.0.0.0',
    });
    try {
      expect(await postFrom(gw.url, '127.0.0.1')).toBe(200);
      expect(await postFrom(gw.url, '127.0.0.1')).toBe(429);
      expect(await postFrom(gw.url, '127.0.0.2')).toBe(200);
    } finally {
      await gw.close();
    }
  });

  it('limits per API key when keys are on (not per IP)', async () => {
    const gw = await startGateway({
      BACKEND_URL: upstream.url,
      API_KEYS: `${KEY_A},${KEY_B}`,
      RATE_LIMIT_RPS: '1',
    });
    try {
      const call = (key: string) =>
        request(gw.url).post('/predict').set('x-api-key', key).send(PREDICT);
      expect((await call(KEY_A)).status).toBe(200);
      expect((await call(KEY_A)).status).toBe(429);
      expect((await call(KEY_B)).status).toBe(200);
      // A bad key is refused (401) before it can use anyone's budget.
      expect((await call('bad')).status).toBe(401);
    } finally {
      await gw.close();
    }
  });

  it('is off by default: no RateLimit headers, no 429', async () => {
    const gw = await startGateway({ BACKEND_URL: upstream.url });
    try {
      for (let i = 0; i < 30; i++) {
        const res = await request(gw.url)
          .post('/predict')
          .send(PREDICT)
          .expect(200);
        expect(res.headers['ratelimit-limit']).toBeUndefined();
      }
    } finally {
      await gw.close();
    }
  });
});

describe('CORS and security headers (e2e)', () => {
  let upstream: Upstream;

  beforeAll(async () => {
    upstream = await new Upstream().start();
  });

  afterAll(async () => {
    await upstream.stop();
  });

  it('sends no CORS headers unless CORS_ORIGINS is set', async () => {
    const gw = await startGateway({ BACKEND_URL: upstream.url });
    try {
      const res = await request(gw.url)
        .post('/predict')
        .set('origin', 'https://app.example')
        .send(PREDICT)
        .expect(200);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      await request(gw.url)
        .options('/predict')
        .set('origin', 'https://app.example')
        .set('access-control-request-method', 'POST')
        .expect(405);
    } finally {
      await gw.close();
    }
  });

  it('answers preflights and exposes the request id for listed origins only', async () => {
    const gw = await startGateway({
      BACKEND_URL: upstream.url,
      CORS_ORIGINS: 'https://app.example, https://admin.example',
      API_KEYS: KEY_A,
    });
    try {
      const preflight = await request(gw.url)
        .options('/predict')
        .set('origin', 'https://app.example')
        .set('access-control-request-method', 'POST')
        .set('access-control-request-headers', 'x-api-key, content-type')
        .expect(204);
      expect(preflight.headers['access-control-allow-origin']).toBe(
        'https://app.example',
      );
      expect(preflight.headers['access-control-allow-methods']).toBe(
        'GET, HEAD, POST',
      );
      const res = await request(gw.url)
        .post('/predict')
        .set('origin', 'https://app.example')
        .set('x-api-key', KEY_A)
        .send(PREDICT)
        .expect(200);
      expect(res.headers['access-control-allow-origin']).toBe(
        'https://app.example',
      );
      expect(res.headers['access-control-expose-headers']).toContain(
        'X-Request-ID',
      );
      const other = await request(gw.url)
        .post('/predict')
        .set('origin', 'https://evil.example')
        .set('x-api-key', KEY_A)
        .send(PREDICT);
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await gw.close();
    }
  });

  it('puts security headers on gateway-made answers and leaves backend answers untouched', async () => {
    const gw = await startGateway({ BACKEND_URL: upstream.url });
    try {
      for (const [path, status] of [
        ['/', 200],
        ['/nope', 404],
        ['/health/live', 200],
        ['/metrics', 200],
      ] as const) {
        const res = await request(gw.url).get(path).expect(status);
        expect(res.headers).toMatchObject({
          'x-content-type-options': 'nosniff',
          'x-frame-options': 'DENY',
          'content-security-policy':
            "default-src 'none'; frame-ancestors 'none'",
          'referrer-policy': 'no-referrer',
          'cache-control': 'no-store',
        });
      }
      const relayed = await request(gw.url)
        .post('/predict')
        .send(PREDICT)
        .expect(200);
      expect(relayed.headers['x-frame-options']).toBeUndefined();
      expect(relayed.headers['cache-control']).toBeUndefined();
      expect(relayed.headers['content-type']).toBe('application/json');
    } finally {
      await gw.close();
    }
  });
});

function postFrom(base: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: new URL(base).port,
        method: 'POST',
        path: '/predict',
        localAddress,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(PREDICT);
  });
}
