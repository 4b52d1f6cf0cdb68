import request from 'supertest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CacheService } from '../src/cache/cache.service.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { json, Upstream } from './support/upstream.js';
import { until } from './support/wait.js';

const BODY = '{"request":{"text":"I love it","request_id":null}}';
const PRETTY = `{
  "request": {
    "request_id": null,
    "text": "I love it"
  }
}`;

/** Answers like the sentiment service, with a counter in the body and a model header. */
function countingHandler(extraHeaders: Record<string, string> = {}) {
  let n = 0;
  return (req: IncomingMessage, res: ServerResponse) =>
    req.url === '/healthz'
      ? json(res, 200, { status: 'ok' })
      : json(
          res,
          200,
          { sentiment: 'POSITIVE', n: ++n },
          { 'x-model-version': '7', ...extraHeaders },
        );
}

const post = (gw: RunningGateway, body = BODY, path = '/predict') =>
  request(gw.url).post(path).set('content-type', 'application/json').send(body);

describe('Response cache, memory store (e2e)', () => {
  let upstream: Upstream;
  let gw: RunningGateway;

  const start = async (env: Record<string, string> = {}) => {
    gw = await startGateway({
      BACKEND_URL: upstream.url,
      RETRY_ATTEMPTS: '0',
      CACHE_TTL_SECONDS: '60',
      ...env,
    });
  };

  beforeEach(async () => {
    upstream = await new Upstream(countingHandler()).start();
  });

  afterEach(async () => {
    await gw?.close();
    await upstream.stop();
  });

  it('is off by default: no X-Cache, every request reaches the backend', async () => {
    await start({ CACHE_TTL_SECONDS: '' });
    for (let i = 0; i < 3; i++) {
      const res = await post(gw).expect(200);
      expect(res.headers['x-cache']).toBeUndefined();
    }
    expect(upstream.received).toHaveLength(3);
  });

  it('answers a repeat byte for byte from the cache, with Age, X-Cache and the current request id', async () => {
    await start();
    const miss = await post(gw).set('x-request-id', 'first').expect(200);
    expect(miss.headers['x-cache']).toBe('MISS');
    const hit = await post(gw).set('x-request-id', 'second').expect(200);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.headers['x-request-id']).toBe('second');
    expect(hit.headers.age).toBe('0');
    expect(hit.text).toBe(miss.text);
    expect(hit.body).toEqual({ sentiment: 'POSITIVE', n: 1 });
    for (const name of ['content-type', 'content-length', 'x-model-version'])
      expect([name, hit.headers[name]]).toEqual([name, miss.headers[name]]);
    // The backend's headers only, as relayed on the miss: none of the
    // gateway's own (its Cache-Control: no-store would contradict the hit).
    expect(Object.keys(hit.headers).sort()).toEqual(
      [...Object.keys(miss.headers), 'age'].sort(),
    );
    expect(upstream.received).toHaveLength(1);
    // /batch_predict is its own entry.
    expect((await post(gw, BODY, '/batch_predict')).headers['x-cache']).toBe(
      'MISS',
    );
    const metrics = await request(gw.url).get('/metrics').expect(200);
    expect(metrics.text).toContain(
      'gateway_cache_requests_total{endpoint="/predict",result="hit"} 1',
    );
    expect(metrics.text).toContain(
      'gateway_cache_requests_total{endpoint="/predict",result="miss"} 1',
    );
    expect(metrics.text).toContain('gateway_cache_entries 2');
  });

  it('keys on canonical JSON: a pretty-printed body with keys reordered hits', async () => {
    await start();
    await post(gw).expect(200);
    const hit = await post(gw, PRETTY).expect(200);
    expect(hit.headers['x-cache']).toBe('HIT');
    // Another text, another query string or a non-JSON body are other entries.
    expect(
      (await post(gw, '{"request":{"text":"other"}}')).headers['x-cache'],
    ).toBe('MISS');
    expect((await post(gw, BODY, '/predict?v=2')).headers['x-cache']).toBe(
      'MISS',
    );
    const text = await request(gw.url)
      .post('/predict')
      .set('content-type', 'text/plain')
      .send(PRETTY);
    expect(text.headers['x-cache']).toBe('MISS');
    expect(upstream.received).toHaveLength(4);
  });

  it('keys on the values of CACHE_KEY_HEADERS', async () => {
    await start({ CACHE_KEY_HEADERS: 'X-Model-Version' });
    await post(gw).set('x-model-version', '1').expect(200);
    const other = await post(gw).set('x-model-version', '2').expect(200);
    expect(other.headers['x-cache']).toBe('MISS');
    const same = await post(gw).set('x-model-version', '1').expect(200);
    expect(same.headers['x-cache']).toBe('HIT');
  });

  it('no-cache skips the lookup and refreshes the entry; no-store bypasses the cache', async () => {
    await start();
    await post(gw).expect(200);
    const refreshed = await post(gw).set('cache-control', 'no-cache');
    expect(refreshed.headers['x-cache']).toBe('MISS');
    expect(refreshed.body.n).toBe(2);
    const hit = await post(gw).expect(200);
    expect([hit.headers['x-cache'], hit.body.n]).toEqual(['HIT', 2]);
    const bypass = await post(gw).set('cache-control', 'no-store');
    expect([bypass.headers['x-cache'], bypass.body.n]).toEqual(['BYPASS', 3]);
    expect((await post(gw)).body.n).toBe(2); // the bypass stored nothing
    expect(upstream.received).toHaveLength(3);
  });

  it('stores only 200s the backend lets it share, up to CACHE_MAX_BODY_BYTES', async () => {
    await start({ CACHE_MAX_BODY_BYTES: '64' });
    const answers: [number, Record<string, string>, string][] = [
      [200, { 'cache-control': 'no-store' }, 'a'],
      [200, { 'cache-control': 'private, max-age=60' }, 'b'],
      [400, {}, 'c'],
      [200, {}, 'x'.repeat(100)],
    ];
    for (const [status, headers, text] of answers) {
      upstream.handler = (_req, res) => json(res, status, { text }, headers);
      // A short request each time: the limit under test is the answer's.
      const body = JSON.stringify({ request: { text: text.slice(0, 8) } });
      await post(gw, body).expect(status);
      expect((await post(gw, body)).headers['x-cache']).toBe('MISS');
    }
    expect(upstream.received).toHaveLength(8);
  });

  it('keeps tenants apart with CACHE_SCOPE=key, shares with global', async () => {
    await start({ API_KEYS: 'key-a,key-b' });
    await post(gw).set('x-api-key', 'key-a').expect(200);
    const b = await post(gw).set('x-api-key', 'key-b').expect(200);
    expect(b.headers['x-cache']).toBe('MISS');
    const a = await post(gw).set('authorization', 'Bearer key-a').expect(200);
    expect(a.headers['x-cache']).toBe('HIT');
    await gw.close();
    await start({ API_KEYS: 'key-a,key-b', CACHE_SCOPE: 'global' });
    await post(gw).set('x-api-key', 'key-a').expect(200);
    const shared = await post(gw).set('x-api-key', 'key-b').expect(200);
    expect(shared.headers['x-cache']).toBe('HIT');
  });

  it('a hit passes the access guards first: 401 without a key, counted by the rate limit with its headers', async () => {
    await start({
      API_KEYS: 'key-a',
      RATE_LIMIT_RPS: '1',
      RATE_LIMIT_BURST: '3',
    });
    await post(gw).set('x-api-key', 'key-a').expect(200);
    await post(gw).expect(401);
    const hit = await post(gw).set('x-api-key', 'key-a').expect(200);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.headers['ratelimit-limit']).toBe('3');
    expect(hit.headers['ratelimit-remaining']).toBe('1');
    await post(gw).set('x-api-key', 'key-a').expect(200);
    const limited = await post(gw).set('x-api-key', 'key-a').expect(429);
    expect(limited.headers['x-cache']).toBeUndefined();
    expect(upstream.received).toHaveLength(1);
  });

  it('single flight: 10 identical concurrent misses make one backend call', async () => {
    await start();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    upstream.handler = async (_req, res) => {
      await held;
      json(res, 200, { sentiment: 'POSITIVE' });
    };
    const answers = Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        post(gw).set('x-request-id', `r${i}`),
      ),
    );
    const cache = gw.app.get(CacheService);
    // Released only once all ten are in: one leads, nine wait for its answer.
    await until(() => cache.waiting === 9, 5000, 0);
    release();
    const results = await answers;
    expect(results.map((r) => r.status)).toEqual(Array(10).fill(200));
    expect(results.map((r) => r.headers['x-request-id'])).toEqual(
      Array.from({ length: 10 }, (_, i) => `r${i}`),
    );
    expect(new Set(results.map((r) => r.text)).size).toBe(1);
    expect(upstream.received).toHaveLength(1);
  });

  it("single flight: the shared call's failure is each waiter's own error, and is not cached", async () => {
    await start();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    upstream.handler = async (_req, res) => {
      await held;
      res.socket?.destroy();
    };
    const answers = Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        post(gw).set('x-request-id', `f${i}`),
      ),
    );
    const cache = gw.app.get(CacheService);
    await until(() => cache.waiting === 9, 5000, 0);
    release();
    const results = await answers;
    const outcomes = results.map((r) => {
      const body = r.body as { request_id: string };
      return [r.status, body.request_id];
    });
    expect(outcomes).toEqual(
      Array.from({ length: 10 }, (_, i) => [502, `f${i}`]),
    );
    expect(upstream.received).toHaveLength(1);
    upstream.handler = countingHandler();
    const next = await post(gw).expect(200);
    expect(next.headers['x-cache']).toBe('MISS');
    expect(upstream.received).toHaveLength(2);
  });
});
