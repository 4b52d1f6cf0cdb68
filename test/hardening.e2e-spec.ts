import fc from 'fast-check';
import request from 'supertest';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  Agent,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { expectGatewayError, UUID_V4 } from './support/expect.js';
import { metricsText, startGateway, withGateway } from './support/gateway.js';
import { openSocket, rawExchange, sample } from './support/raw.js';
import { json } from './support/upstream.js';
import { sleep, until, within } from './support/wait.js';

describe('Hardening: bad input from clients (e2e, raw sockets)', () => {
  const stack = withGateway({ MAX_BODY_BYTES: '1024', RETRY_ATTEMPTS: '0' });

  const H = 'Host: gw\r\n';
  const cases: [string, string, number, RegExp][] = [
    ['garbage request line', 'GARBAGE\r\n\r\n', 400, /malformed request/],
    [
      'invalid method token',
      `G@T / HTTP/1.1\r\n${H}\r\n`,
      400,
      /malformed request line/,
    ],
    [
      'unknown HTTP version',
      `GET / HTTP/9.9\r\n${H}\r\n`,
      400,
      /malformed request line/,
    ],
    [
      'NUL in the request target',
      `GET /\0 HTTP/1.1\r\n${H}\r\n`,
      400,
      /malformed request/,
    ],
    [
      'header over 16 KiB',
      `GET / HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      431,
      /headers too large/,
    ],
    [
      'request target over 16 KiB',
      `GET /${'a'.repeat(20_000)} HTTP/1.1\r\n${H}\r\n`,
      431,
      /headers too large/,
    ],
    [
      'control character in a header',
      `GET / HTTP/1.1\r\n${H}X-A: a\x01b\r\n\r\n`,
      400,
      /malformed/,
    ],
    [
      'space before the colon',
      `POST /predict HTTP/1.1\r\n${H}Transfer-Encoding : chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      400,
      /malformed/,
    ],
    [
      'obsolete line folding',
      `POST /predict HTTP/1.1\r\n${H}X-A: 1\r\n  folded\r\nContent-Length: 2\r\n\r\n{}`,
      400,
      /malformed/,
    ],
    [
      'bare LF line endings',
      `POST /predict HTTP/1.1\n${H.trim()}\nContent-Length: 2\n\n{}`,
      400,
      /malformed/,
    ],
    [
      'Content-Length not a number',
      `POST /predict HTTP/1.1\r\n${H}Content-Length: abc\r\n\r\n{}`,
      400,
      /invalid Content-Length/,
    ],
    [
      'negative Content-Length',
      `POST /predict HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n{}`,
      400,
      /invalid Content-Length/,
    ],
    [
      'two different Content-Lengths',
      `POST /predict HTTP/1.1\r\n${H}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}x`,
      400,
      /conflicting/,
    ],
    [
      'two equal Content-Lengths',
      `POST /predict HTTP/1.1\r\n${H}Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}`,
      400,
      /conflicting/,
    ],
    [
      'Content-Length with chunked (CL.TE smuggling)',
      `POST /predict HTTP/1.1\r\n${H}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST /batch_predict HTTP/1.1\r\n${H}\r\n`,
      400,
      /Content-Length|Transfer-Encoding/,
    ],
    [
      'Transfer-Encoding not ending in chunked',
      `POST /predict HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n{}`,
      400,
      /Transfer-Encoding/,
    ],
    [
      'unknown Transfer-Encoding',
      `POST /predict HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      400,
      /Transfer-Encoding/,
    ],
    [
      'Transfer-Encoding twice',
      `POST /predict HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      400,
      /Transfer-Encoding/,
    ],
    [
      'malformed chunk size',
      `POST /predict HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n`,
      400,
      /chunked/,
    ],
    ['HTTP/1.1 without Host', 'GET / HTTP/1.1\r\n\r\n', 400, /missing Host/],
    [
      'more than 100 header fields',
      `GET / HTTP/1.1\r\n${H}${Array.from({ length: 150 }, (_, i) => `x-h${i}: v`).join('\r\n')}\r\n\r\n`,
      431,
      /more than 100 header fields/,
    ],
    [
      'CONNECT tunnel',
      'CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n',
      405,
      /CONNECT/,
    ],
  ];

  it.each(cases)(
    'answers %s with a JSON %#: status and request id, never reaching the backend',
    async (_what, payload, status, message) => {
      const before = stack.upstream.received.length;
      const answer = await rawExchange(stack.gw.url, payload);
      expectGatewayError(answer, status, { message, strict: true });
      expect(answer.headers['x-request-id']).toMatch(UUID_V4);
      expect(stack.upstream.received.length).toBe(before);
    },
  );

  it('keeps the client request id when the framing breaks after the headers', async () => {
    const answer = await rawExchange(
      stack.gw.url,
      'POST /predict HTTP/1.1\r\nHost: gw\r\nX-Request-ID: broken-body-1\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n',
    );
    expectGatewayError(answer, 400, {
      message: 'malformed chunked body',
      strict: true,
    });
    expect(answer.headers['x-request-id']).toBe('broken-body-1');
    const metrics = await metricsText(stack.gw);
    expect(
      sample(
        metrics,
        'gateway_http_requests_total{method="POST",endpoint="/predict",status="400"}',
      ),
    ).toBeGreaterThanOrEqual(1);
  });

  it('closes the connection after a framing error, so nothing after it is read as a request', async () => {
    const answer = await rawExchange(
      stack.gw.url,
      `POST /predict HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /metrics HTTP/1.1\r\nHost: gw\r\n\r\n`,
    );
    expect(answer.closed).toBe(true);
    expect(answer.headers['connection']).toBe('close');
    expect(answer.text.match(/HTTP\/1\.1 /g)).toHaveLength(1);
  });

  it('counts client errors in gateway_http_requests_total with bounded labels', async () => {
    const series =
      'gateway_http_requests_total{method="OTHER",endpoint="unmatched",status="400"}';
    const before = sample(await metricsText(stack.gw), series);
    await rawExchange(stack.gw.url, 'GARBAGE\r\n\r\n');
    await rawExchange(stack.gw.url, 'ALSO GARBAGE\r\n\r\n');
    expect(sample(await metricsText(stack.gw), series)).toBe(before + 2);
  });

  it('keeps a pipelined second request a request of its own (no smuggling into the first body)', async () => {
    const before = stack.upstream.received.length;
    const answer = await rawExchange(
      stack.gw.url,
      'POST /predict HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n{}' +
        'POST /batch_predict HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]',
    );
    expect(answer.text.match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
    const sent = stack.upstream.received.slice(before);
    expect(sent.map((r) => [r.url, r.body.toString()])).toEqual([
      ['/predict', '{}'],
      ['/batch_predict', '[]'],
    ]);
  });

  it('forwards an absolute-form target to the configured backend only, on the route path', async () => {
    const before = stack.upstream.received.length;
    const answer = await rawExchange(
      stack.gw.url,
      'POST http://evil.example/predict?x=1 HTTP/1.1\r\nHost: evil.example\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
    );
    expect(answer.status).toBe(200);
    expect(stack.upstream.received.slice(before).map((r) => r.url)).toEqual([
      '/predict?x=1',
    ]);
  });

  it('answers a long (8 KiB) unknown path with a 404 whose message stays short', async () => {
    const answer = await rawExchange(
      stack.gw.url,
      `GET /${'a'.repeat(8000)} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n`,
    );
    expectGatewayError(answer, 404, {
      message: /^Cannot GET \/a+$/,
      strict: true,
    });
  });

  it('refuses a chunked body with 413 as soon as it crosses MAX_BODY_BYTES and stops reading the rest', async () => {
    const before = stack.upstream.received.length;
    const socket = await openSocket(stack.gw.url);
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = once(socket, 'close');
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n',
    );
    for (let i = 0; i < 3; i++) socket.write(`258\r\n${'y'.repeat(600)}\r\n`);
    // The answer comes while the client is still "sending": it never said the body ended.
    await until(() => text.includes('\r\n\r\n'), 3000, 20);
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text.toLowerCase()).toContain('connection: close');
    // Whatever follows is not buffered: the gateway closes the connection.
    const chunk = `10000\r\n${'z'.repeat(0x10000)}\r\n`;
    for (let i = 0; i < 64 && !socket.destroyed; i++) socket.write(chunk);
    await within(closed, 3000, 'connection still open 3 s after the 413');
    expect(stack.upstream.received.length).toBe(before);
  });

  it('ignores method override headers on every route', async () => {
    for (const header of [
      'x-http-method-override',
      'x-http-method',
      'x-method-override',
    ]) {
      await request(stack.gw.url)
        .get('/predict')
        .set(header, 'POST')
        .expect(405);
      await request(stack.gw.url)
        .post('/metrics')
        .set(header, 'GET')
        .expect(405);
    }
  });

  it('is still alive and serving after all of the above', async () => {
    await request(stack.gw.url).get('/health/live').expect(200);
    await request(stack.gw.url).post('/predict').send('{}').expect(200);
  });
});

describe('Hardening: path handling (property, e2e)', () => {
  const stack = withGateway({ RETRY_ATTEMPTS: '0' });
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });

  // (after-hooks run last registered first: the agent goes before the gateway)
  afterAll(() => agent.destroy());

  it('forwards only to /predict or /batch_predict, whatever path the client writes', async () => {
    const segment = fc.constantFrom(
      'predict',
      'batch_predict',
      'metrics',
      'health',
      '..',
      '.',
      '%2e%2e',
      '%2E.',
      '%2f',
      '%5c',
      '%00',
      '%70redict',
      ';',
      'predict;x',
      '',
      'a',
      '%252e%252e',
    );
    const path = fc
      .tuple(
        fc.array(segment, { minLength: 1, maxLength: 5 }),
        fc.option(fc.constantFrom('?q=1', '?a=../metrics', '?%2e%2e', '#x')),
      )
      .map(([parts, query]) => '/' + parts.join('/') + (query ?? ''));
    await fc.assert(
      fc.asyncProperty(path, async (target) => {
        const before = stack.upstream.received.length;
        const status = await post(stack.gw.url, target, agent);
        const sent = stack.upstream.received.slice(before).map((r) => r.url);
        for (const url of sent) {
          expect(url).toMatch(/^\/(predict|batch_predict)(\?[^#]*)?$/);
        }
        // A request reaches the backend only when it answered 200 (the backend's).
        expect(sent.length).toBe(status === 200 ? 1 : 0);
      }),
      { numRuns: 150 },
    );
  });
});

describe('Hardening: slow clients (e2e)', () => {
  const stack = withGateway({
    KEEP_ALIVE_TIMEOUT_MS: '500',
    HEADERS_TIMEOUT_MS: '1000',
    REQUEST_TIMEOUT_MS: '2000',
  });

  it('cuts a client trickling its headers after HEADERS_TIMEOUT_MS with a JSON 408', async () => {
    const socket = await openSocket(stack.gw.url);
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = once(socket, 'close');
    const started = Date.now();
    socket.write('POST /predict HTTP/1.1\r\nHost: gw\r\n');
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write('X');
    }, 100);
    await closed;
    clearInterval(trickle);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(4000); // headers timeout + one check interval + slack
    const [head, body] = text.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 408 /);
    expect(JSON.parse(body)).toMatchObject({
      statusCode: 408,
      message: 'request not received in time',
    });
    expect(stack.upstream.received).toHaveLength(0);
  });

  it('cuts a client trickling its body after REQUEST_TIMEOUT_MS, the backend never called', async () => {
    const socket = await openSocket(stack.gw.url);
    socket.on('error', () => undefined);
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    const closed = once(socket, 'close');
    const started = Date.now();
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n{',
    );
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write(' ');
    }, 100);
    await closed;
    clearInterval(trickle);
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(2000);
    expect(elapsed).toBeLessThan(5000);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(stack.upstream.received).toHaveLength(0);
    const metrics = await metricsText(stack.gw);
    expect(
      sample(
        metrics,
        'gateway_http_requests_total{method="POST",endpoint="/predict",status="408"}',
      ),
    ).toBe(1);
  });

  it('serves real clients while 300 idle and slow connections are open, then closes them', async () => {
    const idle: Socket[] = [];
    let closedByServer = 0;
    for (let i = 0; i < 300; i++) {
      const socket = await openSocket(stack.gw.url);
      socket.on('error', () => undefined);
      socket.on('close', () => closedByServer++);
      socket.resume();
      if (i % 2 === 0) socket.write('GET / HTTP/1.1\r\nHost: gw\r\n'); // never finishes
      idle.push(socket);
    }
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      await request(stack.gw.url).post('/predict').send('{}').expect(200);
    }
    expect(Date.now() - started).toBeLessThan(4000);
    await sleep(3500);
    expect(closedByServer).toBe(300);
  });
});

describe('Hardening: clients that abort (e2e)', () => {
  const stack = withGateway(
    { BACKEND_TIMEOUT_MS: '3000', RETRY_ATTEMPTS: '0' },
    { per: 'test' },
  );

  const series499 =
    'gateway_http_requests_total{method="POST",endpoint="/predict",status="499"}';

  it('mid-request (body half sent): counted 499, the backend never called', async () => {
    const socket = await openSocket(stack.gw.url);
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: gw\r\nContent-Length: 100\r\n\r\n{"req',
    );
    await sleep(200);
    socket.destroy();
    await sleep(200);
    expect(sample(await metricsText(stack.gw), series499)).toBe(1);
    expect(stack.upstream.received).toHaveLength(0);
  });

  it('mid-response (waiting for the backend): backend request cancelled, counted 499, nothing in flight', async () => {
    let backendClosed!: () => void;
    const closed = new Promise<void>((resolve) => (backendClosed = resolve));
    let arrived!: () => void;
    const reached = new Promise<void>((resolve) => (arrived = resolve));
    stack.upstream.handler = (req) => {
      req.socket.once('close', backendClosed);
      arrived();
    };
    const client = sendAndForget(stack.gw.url, '/predict');
    await reached;
    client.destroy();
    await closed;
    await sleep(100);
    const metrics = await metricsText(stack.gw);
    expect(sample(metrics, series499)).toBe(1);
    expect(
      sample(
        metrics,
        `gateway_backend_inflight{pool="default",backend="${stack.upstream.url}"}`,
      ),
    ).toBe(0);
  });

  it('mid-stream (part of a large answer read): backend connection closed, counted 499', async () => {
    let backendClosed!: () => void;
    const closed = new Promise<void>((resolve) => (backendClosed = resolve));
    stack.upstream.handler = (req, res) => {
      res.once('close', backendClosed);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const timer = setInterval(() => res.write(Buffer.alloc(16 * 1024)), 10);
      res.once('close', () => clearInterval(timer));
    };
    const client = sendAndForget(stack.gw.url, '/predict', (res) => {
      res.once('data', () => client.destroy());
    });
    await closed;
    await sleep(100);
    expect(sample(await metricsText(stack.gw), series499)).toBe(1);
  });
});

describe('Hardening: faults from backends (e2e)', () => {
  const stack = withGateway(
    { BACKEND_TIMEOUT_MS: '1000', MAX_BODY_BYTES: '4096', RETRY_ATTEMPTS: '0' },
    { per: 'test' },
  );

  async function backendErrors(): Promise<number> {
    return sample(
      await metricsText(stack.gw),
      `gateway_backend_requests_total{endpoint="/predict",status="error",backend="${stack.upstream.url}"}`,
    );
  }

  it('connection reset before the answer: 502 JSON, counted as a backend error', async () => {
    stack.upstream.handler = (req) => void req.socket.destroy();
    const res = await request(stack.gw.url)
      .post('/predict')
      .send('{}')
      .expect(502);
    expectGatewayError(
      {
        status: 502,
        headers: res.headers,
        body: res.text,
      },
      502,
      { message: 'backend unreachable (ECONNRESET)', strict: true },
    );
    expect(await backendErrors()).toBe(1);
  });

  it('connection reset during a sized body: 502 JSON', async () => {
    stack.upstream.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('{"partial": true');
      setTimeout(() => res.socket?.destroy(), 50);
    };
    const res = await request(stack.gw.url)
      .post('/predict')
      .send('{}')
      .expect(502);
    expect(res.body.message).toMatch(/^backend unreachable \(\w+\)$/);
    expect(res.body.request_id).toBe(res.headers['x-request-id']);
  });

  it('connection reset during a streamed body: the client connection is aborted, not ended cleanly', async () => {
    stack.upstream.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(8192));
      setTimeout(() => res.socket?.destroy(), 50);
    };
    const outcome = await streamedAnswerOutcome(stack.gw.url);
    expect(outcome).toBe('aborted');
    await request(stack.gw.url).get('/health/live').expect(200);
  });

  it('invalid HTTP from the backend: 502 JSON', async () => {
    const garbage = await garbageServer();
    const gw2 = await startGateway({
      BACKEND_URL: `http://127.0.0.1:${(garbage.address() as AddressInfo).port}`,
      RETRY_ATTEMPTS: '0',
    });
    try {
      const res = await request(gw2.url)
        .post('/predict')
        .send('{}')
        .expect(502);
      expect(res.body.message).toMatch(/^backend unreachable \(HPE_\w+\)$/);
    } finally {
      await gw2.close();
      garbage.close();
    }
  });

  it('an answer far larger than usual is streamed through, not buffered', async () => {
    const total = 32 * 1024 * 1024;
    const chunk = Buffer.alloc(256 * 1024, 'x');
    let firstBytesSeen!: () => void;
    const seen = new Promise<void>((resolve) => (firstBytesSeen = resolve));
    stack.upstream.handler = async (_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(total),
      });
      res.write(chunk);
      // The rest only once the client got the first bytes: a buffering proxy would deadlock here.
      await seen;
      for (let sent = chunk.length; sent < total; sent += chunk.length) {
        if (!res.write(chunk)) await once(res, 'drain');
      }
      res.end();
    };
    // Its own gateway: the 1 s deadline of this suite is too short for 32 MiB on a busy CI machine.
    const big = await startGateway({
      BACKEND_URL: stack.upstream.url,
      BACKEND_TIMEOUT_MS: '30000',
      MAX_BODY_BYTES: '4096',
      RETRY_ATTEMPTS: '0',
    });
    const hash = createHash('sha256');
    let received = 0;
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: new URL(big.url).port,
          method: 'POST',
          path: '/predict',
        },
        (res) => {
          expect(res.statusCode).toBe(200);
          expect(res.headers['content-length']).toBe(String(total));
          res.on('data', (data: Buffer) => {
            if (received === 0) firstBytesSeen();
            received += data.length;
            hash.update(data);
          });
          res.on('end', resolve);
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end('{}');
    });
    await big.close();
    expect(received).toBe(total);
    const expected = createHash('sha256');
    for (let sent = 0; sent < total; sent += chunk.length)
      expected.update(chunk);
    expect(hash.digest('hex')).toBe(expected.digest('hex'));
  });

  it('headers then a stall (sized body): 504 JSON within BACKEND_TIMEOUT_MS', async () => {
    stack.upstream.handler = (_req, res) => {
      res.writeHead(200, {
        'content-length': '100',
        'x-backend-secret': 'leak',
      });
      res.write('{"partial":');
    };
    const started = Date.now();
    const res = await request(stack.gw.url)
      .post('/predict')
      .send('{}')
      .expect(504);
    expect(Date.now() - started).toBeLessThan(3500);
    expect(res.body).toMatchObject({
      statusCode: 504,
      error: 'Gateway Timeout',
    });
  });

  it('headers then a stall (chunked body, still held): 504 JSON within BACKEND_TIMEOUT_MS', async () => {
    stack.upstream.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first');
    };
    const started = Date.now();
    const res = await request(stack.gw.url)
      .post('/predict')
      .send('{}')
      .expect(504);
    expect(Date.now() - started).toBeLessThan(3500);
    expect(res.body.request_id).toBe(res.headers['x-request-id']);
  });

  it.each([
    ['past what a chunked answer may hold', 'text/plain', 8192],
    ['a stream by type (server-sent events)', 'text/event-stream', 5],
  ])(
    'headers then a stall, %s: the client connection is cut after BACKEND_TIMEOUT_MS',
    async (_what, type, bytes) => {
      stack.upstream.handler = (_req, res) => {
        res.writeHead(200, { 'content-type': type });
        res.write(Buffer.alloc(bytes, 'x'));
      };
      const started = Date.now();
      const outcome = await streamedAnswerOutcome(stack.gw.url);
      expect(outcome).toBe('aborted');
      expect(Date.now() - started).toBeLessThan(3500);
    },
  );

  it('a backend 5xx is relayed as it came (not rewritten), with no gateway security headers', async () => {
    stack.upstream.handler = (_req, res) =>
      json(
        res,
        500,
        { error: 'model crashed' },
        { 'cache-control': 'max-age=5' },
      );
    const res = await request(stack.gw.url)
      .post('/predict')
      .send('{}')
      .expect(500);
    expect(res.body).toEqual({ error: 'model crashed' });
    expect(res.headers['cache-control']).toBe('max-age=5');
    expect(res.headers['x-frame-options']).toBeUndefined();
  });

  it('answers 502 for a dead backend without naming its address', async () => {
    await stack.upstream.stop();
    const res = await request(stack.gw.url)
      .post('/predict')
      .send('{}')
      .expect(502);
    expect(res.text).not.toContain('127.0.0.1');
    expect(res.body.message).toBe('backend unreachable (ECONNREFUSED)');
  });

  it('a backend that answers its probes but serves nonsense never crashes the gateway', async () => {
    const answers: ((res: import('node:http').ServerResponse) => void)[] = [
      (res) => res.socket?.destroy(),
      (res) => {
        res.writeHead(200, { 'content-length': '5' });
        res.end('{}');
      },
      (res) => {
        res.writeHead(200);
        res.socket?.end('garbage');
      },
      () => undefined,
    ];
    let i = 0;
    stack.upstream.handler = (_req, res) => answers[i++ % answers.length](res);
    for (let n = 0; n < 8; n++) {
      await new Promise<void>((resolve) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port: new URL(stack.gw.url).port,
            method: 'POST',
            path: '/predict',
          },
          (res) => {
            res.resume();
            res.on('end', resolve);
            res.on('error', () => resolve());
          },
        );
        req.on('error', () => resolve());
        req.end('{}');
      });
    }
    await request(stack.gw.url).get('/health/live').expect(200);
  });
});

/** POSTs to a path written exactly as given; resolves with the status. */
function post(base: string, path: string, agent: Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: new URL(base).port,
        method: 'POST',
        path,
        agent,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end('{"request":{"text":"x"}}');
  });
}

function sendAndForget(
  base: string,
  path: string,
  onResponse?: (res: IncomingMessage) => void,
) {
  const req = httpRequest({
    host: '127.0.0.1',
    port: new URL(base).port,
    method: 'POST',
    path,
    headers: { 'content-type': 'application/json' },
  });
  req.on('error', () => undefined);
  if (onResponse) req.on('response', onResponse);
  req.end('{}');
  return req;
}

/** A "backend" that answers probes properly and everything else with bytes that are not HTTP. */
async function garbageServer(): Promise<Server> {
  const server = createServer();
  server.on('connection', (socket: Socket) => {
    socket.once('data', (data: Buffer) => {
      if (data.toString().startsWith('GET /healthz')) {
        socket.end(
          'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
        );
      } else {
        socket.end('HELLO I AM NOT HTTP\r\n\r\n');
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

/** POSTs /predict and reads the whole answer: did it end cleanly or was it cut? */
function streamedAnswerOutcome(base: string): Promise<'clean end' | 'aborted'> {
  return new Promise((resolve) => {
    const req = httpRequest(
      {
        host: '127.0.0.1',
        port: new URL(base).port,
        method: 'POST',
        path: '/predict',
      },
      (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve('clean end'));
        res.on('error', () => resolve('aborted'));
      },
    );
    req.on('error', () => resolve('aborted'));
    req.end('{}');
  });
}
