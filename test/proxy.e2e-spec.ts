import request from 'supertest';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { rawExchange } from './support/raw.js';
import { json, sentimentHandler, Upstream } from './support/upstream.js';
import { startGateway, withGateway } from './support/gateway.js';
import { within } from './support/wait.js';

describe('Proxy (e2e)', () => {
  const stack = withGateway(
    { BACKEND_TIMEOUT_MS: '1000', MAX_BODY_BYTES: '1024', RETRY_ATTEMPTS: '0' },
    { per: 'test' },
  );

  it('forwards /predict byte for byte, with path and query, and relays the answer', async () => {
    const body = '{"request":{"text":"I love it","request_id":null}}';
    const res = await request(stack.gw.url)
      .post('/predict?model=v2&x=1')
      .set('content-type', 'application/json')
      .send(body)
      .expect(200);
    expect(res.body).toMatchObject({
      text: 'I love it',
      sentiment: 'POSITIVE',
      confidence: 0.9998,
    });
    expect(stack.upstream.received).toHaveLength(1);
    const sent = stack.upstream.received[0];
    expect(sent.method).toBe('POST');
    expect(sent.url).toBe('/predict?model=v2&x=1');
    expect(sent.body.toString()).toBe(body);
    expect(sent.headers['content-type']).toBe('application/json');
  });

  it('forwards only the headers the client sent (nothing invented), plus X-Forwarded-* and X-Request-ID', async () => {
    const answer = await rawExchange(
      stack.gw.url,
      'POST /predict HTTP/1.1\r\nHost: gw.test\r\nX-Custom: yes\r\n' +
        'Content-Length: 2\r\nConnection: close\r\n\r\n{}',
    );
    expect(answer.status).toBe(200);
    const sent = stack.upstream.received[0].headers;
    for (const invented of [
      'content-type',
      'accept',
      'user-agent',
      'accept-encoding',
    ])
      expect(sent[invented]).toBeUndefined();
    expect(sent).toMatchObject({
      'x-custom': 'yes',
      'content-length': '2',
      'x-forwarded-for': '127.0.0.1',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'gw.test',
      'x-request-id': answer.headers['x-request-id'],
    });
  });

  it('forwards a large body that arrives in many chunks byte for byte, and replays it whole on a retry', async () => {
    const second = await new Upstream((_req, res) =>
      json(res, 200, { ok: true }),
    ).start();
    stack.upstream.handler = (req, res) =>
      req.url === '/healthz' ? json(res, 200, {}) : json(res, 503, {});
    const pool = await startGateway({
      BACKEND_URLS: `${stack.upstream.url},${second.url}`,
      RETRY_ON_5XX: 'true',
      LB_POLICY: 'round_robin',
      MAX_BODY_BYTES: String(4 * 1024 * 1024),
    });
    try {
      const body = Buffer.alloc(3 * 1024 * 1024, 'x');
      body.write('{"first":', 0);
      body.write('"last"}', body.length - 7);
      for (let i = 0; i < 2; i++) {
        // (supertest would JSON-encode a Buffer sent as application/json)
        await request(pool.url)
          .post('/batch_predict')
          .set('content-type', 'application/octet-stream')
          .send(body)
          .expect(200);
      }
      expect(second.received).toHaveLength(2);
      for (const sent of second.received)
        expect(sent.body.equals(body)).toBe(true);
      expect(stack.upstream.received.length).toBeGreaterThanOrEqual(1);
      for (const sent of stack.upstream.received)
        expect(sent.body.equals(body)).toBe(true);
    } finally {
      await pool.close();
      await second.stop();
    }
  });

  it('keeps the path of a backend URL as a prefix', async () => {
    const prefixed = await startGateway({
      BACKEND_URL: `${stack.upstream.url}/v1/`,
      RETRY_ATTEMPTS: '0',
    });
    try {
      await request(prefixed.url).post('/predict?x=1').send('{}').expect(200);
      const urls = stack.upstream.received.map((r) => r.url);
      expect(urls).toContain('/v1/predict?x=1');
      expect(urls).toContain('/v1/healthz'); // the probe too
      expect(urls).not.toContain('/predict?x=1');
    } finally {
      await prefixed.close();
    }
  });

  it('forwards /batch_predict to the same path', async () => {
    stack.upstream.handler = (_req, res) =>
      json(res, 200, { results: [], metadata: { count: 0 }, request_id: 'x' });
    const res = await request(stack.gw.url)
      .post('/batch_predict')
      .send({ request: { texts: ['a'] } })
      .expect(200);
    expect(res.body).toEqual({
      results: [],
      metadata: { count: 0 },
      request_id: 'x',
    });
    expect(stack.upstream.received[0].url).toBe('/batch_predict');
  });

  it('strips hop-by-hop headers both ways and adds X-Forwarded-* and the request id', async () => {
    stack.upstream.handler = (_req, res) =>
      json(
        res,
        200,
        { ok: true },
        {
          'x-backend': 'yes',
          'keep-alive': 'timeout=5',
          'proxy-authenticate': 'Basic',
          'x-secret-hop': '1',
          connection: 'x-secret-hop',
        },
      );
    const res = await request(stack.gw.url)
      .post('/predict')
      .set('connection', 'keep-alive, x-custom-hop')
      .set('x-custom-hop', 'drop me')
      .set('te', 'trailers')
      .set('proxy-authorization', 'Basic abc')
      .set(
        'traceparent',
        '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      )
      .set('tracestate', 'vendor=1')
      .set('x-forwarded-for', '203.0.113.7')
      .set('x-request-id', 'trace-me.1')
      .send('{}')
      .expect(200);
    const headers = stack.upstream.received[0].headers;
    expect(headers['x-custom-hop']).toBeUndefined();
    expect(headers['te']).toBeUndefined();
    expect(headers['proxy-authorization']).toBeUndefined();
    expect(headers['traceparent']).toBe(
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    );
    expect(headers['tracestate']).toBe('vendor=1');
    expect(headers['x-forwarded-for']).toBe('203.0.113.7, 127.0.0.1');
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers['x-forwarded-host']).toBe(new URL(stack.gw.url).host);
    expect(headers['x-request-id']).toBe('trace-me.1');
    expect(headers['host']).toBe(`127.0.0.1:${stack.upstream.port}`);
    expect(res.headers['x-backend']).toBe('yes');
    expect(res.headers['x-request-id']).toBe('trace-me.1');
    expect(res.headers['proxy-authenticate']).toBeUndefined();
    expect(res.headers['x-secret-hop']).toBeUndefined();
  });

  it('relays backend 4xx and 5xx answers as they came', async () => {
    stack.upstream.handler = (req, res) =>
      req.url === '/predict'
        ? json(res, 400, {
            error: 'Invalid input',
            detail: [{ msg: 'text must not be empty' }],
          })
        : json(res, 500, { error: 'model crashed' });
    const bad = await request(stack.gw.url)
      .post('/predict')
      .send({ request: { text: '' } })
      .expect(400);
    expect(bad.body).toEqual({
      error: 'Invalid input',
      detail: [{ msg: 'text must not be empty' }],
    });
    const broken = await request(stack.gw.url)
      .post('/batch_predict')
      .send({})
      .expect(500);
    expect(broken.body).toEqual({ error: 'model crashed' });
  });

  it('answers 502 with a JSON error when the backend is unreachable', async () => {
    await stack.upstream.stop();
    const res = await request(stack.gw.url)
      .post('/predict')
      .set('x-request-id', 'r-502')
      .send('{}')
      .expect(502);
    expect(res.headers['content-type']).toMatch(/application\/json/);
    expect(res.headers['x-request-id']).toBe('r-502');
    expect(res.body).toEqual({
      statusCode: 502,
      error: 'Bad Gateway',
      message: 'backend unreachable (ECONNREFUSED)',
      request_id: 'r-502',
    });
  });

  it('answers 502 when the backend resets the connection', async () => {
    stack.upstream.handler = (req) => void req.socket.destroy();
    const res = await request(stack.gw.url)
      .post('/predict')
      .send('{}')
      .expect(502);
    expect(res.body.message).toMatch(/backend unreachable/);
  });

  it('answers 504 when the backend does not answer in time', async () => {
    stack.upstream.handler = () => undefined; // never answers
    const started = Date.now();
    const res = await request(stack.gw.url)
      .post('/predict')
      .send('{}')
      .expect(504);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(res.body).toMatchObject({
      statusCode: 504,
      error: 'Gateway Timeout',
    });
    expect(res.body.request_id).toBe(res.headers['x-request-id']);
  });

  it('answers 504 when the backend sends headers and then stalls the body', async () => {
    stack.upstream.handler = (_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': '100',
      });
      res.write('{"partial":');
    };
    const res = await request(stack.gw.url)
      .post('/predict')
      .send('{}')
      .expect(504);
    expect(res.body.error).toBe('Gateway Timeout');
  });

  it('refuses a body over MAX_BODY_BYTES with 413 and never calls the backend', async () => {
    const res = await request(stack.gw.url)
      .post('/predict')
      .set('content-type', 'application/json')
      .send('x'.repeat(2048))
      .expect(413);
    expect(res.body).toMatchObject({
      statusCode: 413,
      error: 'Payload Too Large',
    });
    expect(res.headers['x-request-id']).toBeDefined();
    expect(stack.upstream.received).toHaveLength(0);
  });

  it('refuses a chunked body once it crosses the limit', async () => {
    const { port } = new URL(stack.gw.url);
    const req = httpRequest({
      port,
      host: '127.0.0.1',
      method: 'POST',
      path: '/predict',
      headers: { 'transfer-encoding': 'chunked' },
    });
    req.on('error', () => undefined);
    const response = once(req, 'response');
    for (let i = 0; i < 3; i++) req.write('y'.repeat(600));
    const [res] = (await response) as [import('node:http').IncomingMessage];
    expect(res.statusCode).toBe(413);
    req.destroy();
    expect(stack.upstream.received).toHaveLength(0);
  });

  it('cancels the backend request when the client disconnects', async () => {
    // A gateway of its own with a deadline far off: within the wait below the
    // backend connection can only close because the client left, not because
    // BACKEND_TIMEOUT_MS cut the call (1 s on the suite's gateway).
    const patient = await startGateway({
      BACKEND_URL: stack.upstream.url,
      BACKEND_TIMEOUT_MS: '60000',
      RETRY_ATTEMPTS: '0',
    });
    try {
      let backendClosed!: () => void;
      const closed = new Promise<void>((resolve) => (backendClosed = resolve));
      let arrived!: () => void;
      const reached = new Promise<void>((resolve) => (arrived = resolve));
      stack.upstream.handler = (req, res, body) => {
        // Health probes are answered: only the prediction is held open.
        if (req.url !== '/predict') return sentimentHandler(req, res, body);
        req.socket.once('close', () => backendClosed());
        arrived();
      };
      const { port } = new URL(patient.url);
      const req = httpRequest({
        port,
        host: '127.0.0.1',
        method: 'POST',
        path: '/predict',
        headers: { 'content-type': 'application/json' },
      });
      req.on('error', () => undefined);
      req.end('{}');
      await reached;
      req.destroy();
      // The gateway closes its connection to the backend at once; 5 s leaves
      // room for a loaded machine and is far below the 60 s deadline.
      await expect(
        within(
          closed,
          5000,
          'backend connection still open 5 s after the client left',
        ),
      ).resolves.toBeUndefined();
    } finally {
      // Cuts a call the gateway failed to cancel, so closing it cannot wait on it.
      await stack.upstream.stop();
      await patient.close();
    }
  });
});
