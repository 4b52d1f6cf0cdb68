import request from 'supertest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { json, Upstream } from './support/upstream.js';

/**
 * The cache's rules as a hostile client tries them (second outside review):
 * what is keyed, what may be stored and for how long (RFC 9111), and that
 * key work stays bounded.
 */
describe('Response cache rules (e2e)', () => {
  let upstream: Upstream;
  let gw: RunningGateway;
  /** Headers the backend adds to its next answers. */
  let answerHeaders: Record<string, string> = {};
  let answers = 0;

  const handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    if (req.url === '/healthz') return json(res, 200, { status: 'ok' });
    const auth = req.headers.authorization;
    if (auth !== undefined && auth !== 'Bearer good')
      return json(res, 401, { error: 'unauthorized' });
    json(
      res,
      200,
      { n: ++answers, auth: auth ?? null, bytes: body.length },
      answerHeaders,
    );
  };

  beforeEach(async () => {
    answers = 0;
    answerHeaders = {};
    upstream = await new Upstream(handler).start();
    gw = await startGateway({
      BACKEND_URL: upstream.url,
      RETRY_ATTEMPTS: '0',
      CACHE_TTL_SECONDS: '60',
      // Room for row 2's four 9 MB bodies at once.
      MAX_BUFFERED_BODY_BYTES: String(64 * 1024 * 1024),
    });
  });

  afterEach(async () => {
    await gw.close();
    await upstream.stop();
  });

  const post = (body: string | Buffer, headers: Record<string, string> = {}) =>
    request(gw.url)
      .post('/predict')
      .set({ 'content-type': 'application/json', ...headers })
      .send(body);

  it('row 3: an answer to a request with Authorization or Cookie is never served for other credentials', async () => {
    const body = '{"request":{"text":"secret"}}';
    const good = await post(body, { authorization: 'Bearer good' });
    expect([good.status, good.headers['x-cache']]).toEqual([200, 'MISS']);
    const none = await post(body);
    expect(none.headers['x-cache']).toBe('MISS');
    expect(none.body.auth).toBeNull();
    const bad = await post(body, { authorization: 'Bearer bad' });
    expect(bad.status).toBe(401);
    expect(bad.headers['x-cache']).toBe('MISS');
    const cookie = await post(body, { cookie: 'session=other' });
    expect(cookie.headers['x-cache']).toBe('MISS');
    // The same credentials again: the same client, its own entry.
    const again = await post(body, { authorization: 'Bearer good' });
    expect([again.headers['x-cache'], again.body.n]).toEqual(['HIT', 1]);
    expect(upstream.received).toHaveLength(4);
  });

  it('row 6: bodies naming a member twice are keyed by their bytes (parsers disagree on which wins)', async () => {
    const a = await post('{"request":{"\\u0074ext":"A","text":"B"}}');
    const b = await post('{"request":{"text":"B","\\u0074ext":"A"}}');
    expect([a.headers['x-cache'], b.headers['x-cache']]).toEqual([
      'MISS',
      'MISS',
    ]);
    expect([a.body.n, b.body.n]).toEqual([1, 2]);
  });

  it('row 7: Content-Type and Content-Encoding are part of the key', async () => {
    const bytes = '{"request":{"text":"same"}}';
    await post(bytes, { 'content-type': 'text/plain' }).expect(200);
    const other = await post(bytes, {
      'content-type': 'application/octet-stream',
    });
    expect(other.headers['x-cache']).toBe('MISS');
    const gzipped = gzipSync(bytes);
    await post(gzipped, { 'content-encoding': 'gzip' }).expect(200);
    const plain = await post(gzipped);
    expect(plain.headers['x-cache']).toBe('MISS');
    expect(upstream.received).toHaveLength(4);
  });

  it.each([
    ['Cache-Control: no-cache', { 'cache-control': 'no-cache' }],
    ['Cache-Control: max-age=0', { 'cache-control': 'max-age=0' }],
    [
      'Cache-Control: s-maxage=0',
      { 'cache-control': 'max-age=60, s-maxage=0' },
    ],
    ['an Expires in the past', { expires: 'Thu, 01 Jan 1970 00:00:00 GMT' }],
    ['an invalid Expires', { expires: '0' }],
    ['Pragma: no-cache', { pragma: 'no-cache' }],
    ['Vary: Accept, *', { vary: 'Accept, *' }],
    ['Vary on a header the key leaves out', { vary: 'Accept-Language' }],
  ])(
    'row 8: an answer with %s is not stored',
    async (_what, headers: Record<string, string>) => {
      answerHeaders = headers;
      const body = '{"request":{"text":"fresh?"}}';
      await post(body).expect(200);
      const second = await post(body).expect(200);
      expect(second.headers['x-cache']).toBe('MISS');
      expect(second.body.n).toBe(2);
    },
  );

  it('row 8: an answer keeps its own freshness lifetime (max-age less its Age), within CACHE_TTL_SECONDS', async () => {
    answerHeaders = { 'cache-control': 'max-age=60', age: '60' };
    await post('{"request":{"text":"spent"}}').expect(200);
    expect(
      (await post('{"request":{"text":"spent"}}')).headers['x-cache'],
    ).toBe('MISS');
    answerHeaders = { 'cache-control': 'public, max-age=30', age: '10' };
    await post('{"request":{"text":"fresh"}}').expect(200);
    expect(
      (await post('{"request":{"text":"fresh"}}')).headers['x-cache'],
    ).toBe('HIT');
  });

  it.each([
    ['Cache-Control: max-age=0', { 'cache-control': 'max-age=0' }],
    ['Pragma: no-cache', { pragma: 'no-cache' }],
    ['Cache-Control: no-cache', { 'cache-control': 'no-cache' }],
  ])(
    'row 8: a request with %s is answered by the backend, and refreshes the entry',
    async (_what, headers: Record<string, string>) => {
      const body = '{"request":{"text":"refresh"}}';
      await post(body).expect(200);
      const refreshed = await post(body, headers).expect(200);
      expect([refreshed.headers['x-cache'], refreshed.body.n]).toEqual([
        'MISS',
        2,
      ]);
      expect((await post(body)).body.n).toBe(2);
    },
  );

  it('row 9: a deeply nested body is forwarded as it would be with the cache off', async () => {
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    const res = await post(deep).expect(200);
    expect(res.body.bytes).toBe(10_000);
    expect(res.headers['x-cache']).toBe('MISS');
  });

  it('row 2: key work is bounded: a 9 MB JSON body is not cached, and liveness answers while four are keyed', async () => {
    const big = `[${'1,'.repeat(4_500_000)}1]`;
    const answersIn = Promise.all(
      Array.from({ length: 4 }, () => post(big).expect(200)),
    );
    const probes: number[] = [];
    let done = false;
    void answersIn.finally(() => (done = true));
    while (!done) {
      const started = performance.now();
      await request(gw.url).get('/health/live').expect(200);
      probes.push(performance.now() - started);
    }
    const answered = await answersIn;
    expect(answered.map((r) => r.headers['x-cache'])).toEqual(
      Array(4).fill('BYPASS'),
    );
    console.log(
      `4 x 9 MB JSON with the cache on: slowest liveness answer ${Math.max(...probes).toFixed(0)} ms of ${probes.length}`,
    );
    // Before: 2-2.6 s of key work per request, up to 8 s of liveness wait.
    expect(Math.max(...probes)).toBeLessThan(1000);
  });
});
