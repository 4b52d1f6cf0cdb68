import request from 'supertest';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { UUID_V4 } from './support/expect.js';
import { withGateway } from './support/gateway.js';

const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as {
  version: string;
};

describe('Routes, request ids and metrics (e2e)', () => {
  const stack = withGateway({ ENVIRONMENT: 'staging' });

  it('GET / describes the service', async () => {
    const res = await request(stack.gw.url).get('/').expect(200);
    expect(res.body).toEqual({
      service: 'api-gateway',
      version,
      environment: 'staging',
      endpoints: {
        health: 'GET /health',
        liveness: 'GET /health/live',
        readiness: 'GET /health/ready',
        predict: 'POST /predict',
        batch_predict: 'POST /batch_predict',
        metrics: 'GET /metrics',
      },
    });
  });

  it('answers 404 as JSON for unknown paths, with the request id', async () => {
    const res = await request(stack.gw.url)
      .get('/nope?x=1')
      .set('x-request-id', 'req-404')
      .expect(404);
    expect(res.headers['x-request-id']).toBe('req-404');
    expect(res.body).toEqual({
      statusCode: 404,
      error: 'Not Found',
      message: 'Cannot GET /nope',
      request_id: 'req-404',
    });
  });

  it.each([
    ['get', '/predict', 'POST'],
    ['put', '/batch_predict', 'POST'],
    ['post', '/health', 'GET, HEAD'],
    ['delete', '/metrics', 'GET, HEAD'],
    ['post', '/', 'GET, HEAD'],
  ] as const)(
    'answers %s %s with 405 and Allow: %s',
    async (method, path, allow) => {
      const res = await request(stack.gw.url)[method](path).expect(405);
      expect(res.headers['allow']).toBe(allow);
      expect(res.body).toMatchObject({
        statusCode: 405,
        error: 'Method Not Allowed',
      });
      expect(res.body.request_id).toBe(res.headers['x-request-id']);
    },
  );

  it('never lets a path trick reach another backend path', async () => {
    const before = stack.upstream.received.length;
    const statuses: Record<string, number> = {};
    for (const path of [
      '/predict/../metrics',
      '/predict/..%2fmetrics',
      '//predict',
      '/predict/',
      '/%2e%2e/predict',
      '/PREDICT',
      '/%70redict',
      '/predict;/../metrics',
    ]) {
      statuses[path] = await rawStatus(stack.gw.url, 'POST', path);
    }
    expect(statuses).toEqual({
      '/predict/../metrics': 404,
      '/predict/..%2fmetrics': 404,
      '//predict': 404,
      '/predict/': 404,
      '/%2e%2e/predict': 404,
      '/PREDICT': 404,
      '/%70redict': 200, // %70 is "p": the same path, forwarded as /predict
      '/predict;/../metrics': 404,
    });
    expect(stack.upstream.received.slice(before).map((r) => r.url)).toEqual([
      '/predict',
    ]);
  });

  it('ignores method override headers', async () => {
    const res = await request(stack.gw.url)
      .get('/predict')
      .set('x-http-method-override', 'POST')
      .expect(405);
    expect(res.headers['allow']).toBe('POST');
  });

  describe('X-Request-ID', () => {
    it('keeps a well-formed id', async () => {
      const id = 'A-z_0.9:' + 'x'.repeat(120);
      const res = await request(stack.gw.url)
        .get('/')
        .set('x-request-id', id)
        .expect(200);
      expect(res.headers['x-request-id']).toBe(id);
    });

    it.each([
      ['too long', 'x'.repeat(129)],
      ['with spaces', 'a b'],
      ['with a slash', 'a/b'],
      ['with a quote', 'a"b'],
      ['with unicode', 'café'],
    ])('replaces an id %s by a UUID v4', async (_what, id) => {
      const res = await request(stack.gw.url)
        .get('/')
        .set('x-request-id', encodeURI(id) === id ? id : id)
        .expect(200);
      expect(res.headers['x-request-id']).toMatch(UUID_V4);
    });

    it('makes a UUID v4 when none is sent and sends it to the backend', async () => {
      const res = await request(stack.gw.url)
        .post('/predict')
        .send('{"request":{"text":"hi"}}')
        .expect(200);
      const id = res.headers['x-request-id'];
      expect(id).toMatch(UUID_V4);
      expect(stack.upstream.received.at(-1)?.headers['x-request-id']).toBe(id);
    });
  });

  describe('GET /metrics', () => {
    it('exposes the Go gateway metric names and process metrics', async () => {
      await request(stack.gw.url)
        .post('/predict')
        .send('{"request":{"text":"hi"}}')
        .expect(200);
      const res = await request(stack.gw.url).get('/metrics').expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      const text = res.text;
      expect(text).toMatch(
        /^gateway_http_requests_total\{method="POST",endpoint="\/predict",status="200"\} \d+$/m,
      );
      expect(text).toMatch(
        /^gateway_http_request_duration_seconds_bucket\{le="30",method="POST",endpoint="\/predict"\} \d+$/m,
      );
      expect(text).toContain(
        `gateway_backend_requests_total{endpoint="/predict",status="200",backend="${stack.upstream.url}"}`,
      );
      expect(text).toMatch(
        new RegExp(
          `^gateway_backend_request_duration_seconds_bucket\\{le="30",endpoint="/predict",backend="${stack.upstream.url}"\\} \\d+$`,
          'm',
        ),
      );
      expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
      expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    });

    it('never makes a label value from a raw path', async () => {
      for (let i = 0; i < 20; i++)
        await request(stack.gw.url).get(`/scan/${i}/wp-admin.php`).expect(404);
      const text = (await request(stack.gw.url).get('/metrics').expect(200))
        .text;
      expect(text).not.toContain('wp-admin');
      const endpoints = new Set(
        [...text.matchAll(/endpoint="([^"]*)"/g)].map((m) => m[1]),
      );
      expect([...endpoints].sort()).toEqual(
        [...endpoints]
          .filter((e) =>
            [
              '/',
              '/predict',
              '/batch_predict',
              '/health',
              '/health/live',
              '/health/ready',
              '/metrics',
              'unmatched',
            ].includes(e),
          )
          .sort(),
      );
      expect(endpoints).toContain('unmatched');
    });
  });
});

/** Sends a path exactly as written (supertest would normalise it). */
function rawStatus(
  base: string,
  method: string,
  path: string,
): Promise<number> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end('{"request":{"text":"x"}}');
  });
}
