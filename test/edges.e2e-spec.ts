import request from 'supertest';
import { until } from './support/wait.js';
import { once } from 'node:events';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { expectGatewayError, UUID_V4 } from './support/expect.js';
import { metricsText, startGateway, withGateway } from './support/gateway.js';
import { spawnGateway, type GatewayProcess } from './support/process.js';
import {
  openCollecting,
  openSocket,
  parseAnswer,
  rawExchange,
  sample,
  type RawAnswer,
} from './support/raw.js';
import { json, Upstream } from './support/upstream.js';

// The edges of HTTP/1.1 found by a hostile review (issue 10), one test per row.

/** A server-side socket with Node's HTTP parser (slots by number, not typed by @types/node). */
type ParsedSocket = Socket & { parser?: Record<string, unknown> };

/** Splits what a server wrote on one connection into its answers (Content-Length framed). */
function splitAnswers(text: string, closed: boolean): RawAnswer[] {
  const answers: RawAnswer[] = [];
  let rest = text;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) break;
    const head = parseAnswer(rest.slice(0, end + 4), closed);
    const length = Number(head.headers['content-length'] ?? 0);
    const total = end + 4 + length;
    answers.push(parseAnswer(rest.slice(0, total), closed));
    rest = rest.slice(total);
  }
  return answers;
}

/**
 * Writes `bytes` in pieces of 1..`most` bytes, each flushed and followed by a
 * turn of the event loop (so an in-process server reads it on its own);
 * stops early if the server closes the connection.
 */
async function writeInPieces(
  socket: Socket,
  bytes: Buffer,
  most: number,
): Promise<void> {
  for (let at = 0; at < bytes.length && !socket.destroyed;) {
    const size = 1 + Math.floor(Math.random() * most);
    const piece = bytes.subarray(at, at + size);
    const written = await new Promise<boolean>((resolve) =>
      socket.write(piece, (err) => resolve(!err)),
    );
    if (!written) return;
    await new Promise((resolve) => setImmediate(resolve));
    at += piece.length;
  }
}

/** Resolves when the first bytes of an answer arrive (or the connection closes). */
function firstBytes(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1')));
    socket.once('close', () => resolve(''));
  });
}

describe('HTTP edges (e2e, raw sockets)', () => {
  const stack = withGateway({ MAX_BODY_BYTES: '1024', RETRY_ATTEMPTS: '0' });

  /** The request the backend received with this request id. */
  const receivedAs = (id: string) =>
    stack.upstream.received.filter((r) => r.headers['x-request-id'] === id);

  it('row 2: answers pipelined requests in order, then the 400 for the garbage after them, then closes', async () => {
    const series = (status: number) =>
      `gateway_http_requests_total{method="POST",endpoint="/predict",status="${status}"}`;
    const metricsBefore = await metricsText(stack.gw);
    const post = (id: string) =>
      `POST /predict HTTP/1.1\r\nHost: gw\r\nX-Request-ID: ${id}\r\nContent-Length: 2\r\n\r\n{}`;
    const answer = await rawExchange(
      stack.gw.url,
      post('pipe-1') + post('pipe-2') + post('pipe-3') + 'GARBAGE\r\n\r\n',
      3000,
    );
    expect(answer.closed).toBe(true);
    const answers = splitAnswers(answer.text, true);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 400]);
    expect(answers.map((a) => a.headers['x-request-id'])).toEqual([
      'pipe-1',
      'pipe-2',
      'pipe-3',
      expect.stringMatching(UUID_V4),
    ]);
    expectGatewayError(answers[3], 400);
    expect(answers[3].headers.connection).toBe('close');
    for (const id of ['pipe-1', 'pipe-2', 'pipe-3'])
      expect(receivedAs(id)).toHaveLength(1);
    const metrics = await metricsText(stack.gw);
    expect(
      sample(metrics, series(200)) - sample(metricsBefore, series(200)),
    ).toBe(3);
    expect(sample(metrics, series(400))).toBe(
      sample(metricsBefore, series(400)),
    );
  });

  it('row 4: a header named in Connection is gone before X-Forwarded-For is appended', async () => {
    const answer = await rawExchange(
      stack.gw.url,
      'POST /predict HTTP/1.1\r\nHost: gw\r\nX-Request-ID: conn-1\r\nConnection: keep-alive, X-Forwarded-For, X-Secret\r\n' +
        'X-Forwarded-For: 6.6.6.6\r\nX-Secret: s\r\nContent-Length: 2\r\n\r\n{}',
    );
    expect(answer.status).toBe(200);
    const [sent] = receivedAs('conn-1');
    expect(sent.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(sent.headers['x-secret']).toBeUndefined();
  });

  it.each([
    ['two Host headers', 'Host: a.example\r\nHost: b.example\r\n'],
    ['two equal Host headers', 'Host: a.example\r\nHost: a.example\r\n'],
    ['a Host with a space, a slash and a query', 'Host: a b/c?d\r\n'],
    ['a Host with a path', 'Host: a.example/x\r\n'],
  ])(
    'row 5: refuses %s with a JSON 400, never forwarded',
    async (_what, host) => {
      const answer = await rawExchange(
        stack.gw.url,
        `POST /predict HTTP/1.1\r\n${host}X-Request-ID: host-1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
      );
      expectGatewayError(answer, 400);
      expect(answer.headers['x-request-id']).toBe('host-1');
      expect(JSON.parse(answer.body)).toMatchObject({
        message: 'invalid Host header',
      });
      expect(receivedAs('host-1')).toHaveLength(0);
    },
  );

  it.each([
    ['api.example.com'],
    ['api.example.com:8443'],
    ['127.0.0.1:8080'],
    ['[::1]:8080'],
  ])(
    'row 5: still serves a valid Host (%s) and forwards it as X-Forwarded-Host',
    async (host) => {
      const answer = await rawExchange(
        stack.gw.url,
        `POST /predict HTTP/1.1\r\nHost: ${host}\r\nX-Request-ID: host-ok\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
      );
      expect(answer.status).toBe(200);
      expect(receivedAs('host-ok').at(-1)?.headers['x-forwarded-host']).toBe(
        host,
      );
    },
  );

  it('row 6: refuses a transfer coding other than chunked with a JSON 501, never forwarded', async () => {
    const answer = await rawExchange(
      stack.gw.url,
      'POST /predict HTTP/1.1\r\nHost: gw\r\nX-Request-ID: te-1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n' +
        '2\r\nab\r\n0\r\n\r\n',
    );
    expectGatewayError(answer, 501);
    expect(answer.headers['x-request-id']).toBe('te-1');
    expect(answer.closed).toBe(true);
    expect(receivedAs('te-1')).toHaveLength(0);
  });

  it('row 7: Expect: 100-continue with a Content-Length over MAX_BODY_BYTES gets 413 at once, no 100 Continue', async () => {
    const socket = await openSocket(stack.gw.url);
    socket.on('error', () => undefined);
    const first = firstBytes(socket);
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: gw\r\nX-Request-ID: big-1\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n',
    );
    const text = await first;
    socket.destroy();
    const answer = parseAnswer(text, false);
    expectGatewayError(answer, 413);
    expect(answer.headers['x-request-id']).toBe('big-1');
  });

  it('row 7: Expect: 100-continue within the limit still gets 100 Continue and is served', async () => {
    const socket = await openSocket(stack.gw.url);
    socket.on('error', () => undefined);
    const first = firstBytes(socket);
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\n',
    );
    expect(await first).toMatch(/^HTTP\/1\.1 100 Continue\r\n/);
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.write('{}');
    await once(socket, 'close');
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('row 9: an HTTP/0.9 request line followed by a blank line gets a JSON 400 at once', async () => {
    const answer = await rawExchange(stack.gw.url, 'GET /\r\n\r\n', 3000);
    expectGatewayError(answer, 400);
    expect(JSON.parse(answer.body)).toMatchObject({
      message: 'HTTP/0.9 is not supported',
    });
    expect(answer.closed).toBe(true);
  });

  it('row 9: a bare HTTP/0.9 request line (no blank line after it) gets the JSON 400 at once, counted, then close', async () => {
    const series =
      'gateway_http_requests_total{method="OTHER",endpoint="unmatched",status="400"}';
    const before = sample(await metricsText(stack.gw), series);
    // Sent in pieces: the line is judged once it is whole.
    const { socket, text, closed } = await openCollecting(stack.gw.url);
    await writeInPieces(socket, Buffer.from('\r\nGET /he'), 3);
    socket.write('alth\r\n');
    await closed;
    const answer = parseAnswer(text(), true);
    expectGatewayError(answer, 400);
    expect(JSON.parse(answer.body)).toMatchObject({
      message: 'HTTP/0.9 is not supported',
    });
    expect(answer.headers['x-request-id']).toMatch(UUID_V4);
    expect(answer.headers.connection).toBe('close');
    expect(sample(await metricsText(stack.gw), series) - before).toBe(1);
  });

  it('row 9: a request line split across reads, and later requests on the connection, are served as usual', async () => {
    const { socket, text, closed } = await openCollecting(stack.gw.url);
    const get = Buffer.from('GET /health/live HTTP/1.1\r\nHost: gw\r\n\r\n');
    await writeInPieces(socket, get, 1);
    await writeInPieces(
      socket,
      Buffer.from(
        'POST /predict HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}',
      ),
      4,
    );
    await closed;
    expect(splitAnswers(text(), true).map((a) => a.status)).toEqual([200, 200]);
  });

  it('row 8: a chunk size over MAX_BODY_BYTES gets the JSON 413 with the request id as soon as its line is read, then close; nothing forwarded', async () => {
    const series =
      'gateway_http_requests_total{method="POST",endpoint="/predict",status="413"}';
    const before = sample(await metricsText(stack.gw), series);
    const { socket, text, closed } = await openCollecting(stack.gw.url);
    const continued = firstBytes(socket);
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: gw\r\nX-Request-ID: chunk-big-1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n',
    );
    // The gateway has the headers (its 100 says so): the size line comes in
    // later reads, in pieces.
    const hundred = await continued;
    expect(hundred).toBe('HTTP/1.1 100 Continue\r\n\r\n');
    await writeInPieces(socket, Buffer.from('7FFFFFFF\r\n'), 3);
    await closed;
    const answer = parseAnswer(text().slice(hundred.length), true);
    expectGatewayError(answer, 413);
    expect(answer.headers['x-request-id']).toBe('chunk-big-1');
    expect(answer.headers.connection).toBe('close');
    expect(receivedAs('chunk-big-1')).toHaveLength(0);
    // Counted when the gateway's side of the connection closes, which can
    // come just after the client's.
    await until(
      async () => sample(await metricsText(stack.gw), series) - before === 1,
    );
    expect(sample(await metricsText(stack.gw), series) - before).toBe(1);
  });

  it('row 8: the size line in the same read as the headers, on a keep-alive connection after a served request, gets the 413 too', async () => {
    const { socket, text, closed } = await openCollecting(stack.gw.url);
    const first = firstBytes(socket);
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: gw\r\nX-Request-ID: chunk-ok-0\r\nContent-Length: 2\r\n\r\n{}',
    );
    await first;
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: gw\r\nX-Request-ID: chunk-big-2\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n7FFFFFFF\r\n',
    );
    await closed;
    const answers = splitAnswers(text(), true);
    expect(answers.map((a) => a.status)).toEqual([200, 413]);
    expectGatewayError(answers[1], 413);
    expect(answers[1].headers['x-request-id']).toBe('chunk-big-2');
    expect(receivedAs('chunk-big-2')).toHaveLength(0);
  });

  it('row 8: valid chunked bodies up to the limit, sent in tiny pieces or pipelined, are proxied whole', async () => {
    // 1024 bytes of JSON (MAX_BODY_BYTES) in chunks of 0x200, 0x1ff and 1,
    // with an extension and a trailer.
    const json = `{"request":{"text":"${'q'.repeat(1001)}"}}`;
    const data = Buffer.from(json);
    const body =
      `200;ext=1\r\n${json.slice(0, 0x200)}\r\n1FF\r\n${json.slice(0x200, 0x3ff)}\r\n` +
      `1\r\n${json.slice(0x3ff)}\r\n0\r\nX-Trailer: 1\r\n\r\n`;
    const chunked = (id: string, close = '') =>
      `POST /predict HTTP/1.1\r\nHost: gw\r\nX-Request-ID: ${id}\r\nTransfer-Encoding: chunked\r\n${close}\r\n` +
      body;
    const { socket, text, closed } = await openCollecting(stack.gw.url);
    const message = Buffer.from(chunked('chunk-tiny-1'), 'latin1');
    // Headers in one read, then the body in pieces of 1..7 bytes.
    const bodyAt = message.length - body.length;
    socket.write(message.subarray(0, bodyAt));
    await writeInPieces(socket, message.subarray(bodyAt), 7);
    // Then two pipelined in one write, the second closing.
    socket.write(
      chunked('chunk-pipe-1') +
        chunked('chunk-pipe-2', 'Connection: close\r\n'),
    );
    await closed;
    expect(splitAnswers(text(), true).map((a) => a.status)).toEqual([
      200, 200, 200,
    ]);
    for (const id of ['chunk-tiny-1', 'chunk-pipe-1', 'chunk-pipe-2']) {
      const [sent] = receivedAs(id);
      expect(sent.body.equals(data)).toBe(true);
    }
  });

  it("rows 8-9: on a keep-alive connection, Node's own parser callback is back once the first request line and each chunked body are read", async () => {
    const server = stack.gw.app.getHttpServer();
    const accepted = once(server, 'connection') as Promise<[ParsedSocket]>;
    const socket = await openSocket(stack.gw.url);
    socket.on('error', () => undefined);
    const [serverSide] = await accepted;
    const parser = serverSide.parser!;
    // The function Node's C++ parser calls after each read: Node's own, or the early-reject hook.
    const executeSlot = () =>
      Object.keys(parser)
        .filter((key) => /^\d+$/.test(key))
        .map((key) => parser[key])
        .find(
          (value): value is (...args: unknown[]) => unknown =>
            typeof value === 'function' &&
            /onParserExecute|hook/.test(value.name),
        );
    expect(executeSlot()?.name).toBe('hook');
    const answered = () => firstBytes(socket);
    let answer = answered();
    socket.write('GET /health/live HTTP/1.1\r\nHost: gw\r\n\r\n');
    expect(await answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(executeSlot()?.name).toBe('bound onParserExecute');
    answer = answered();
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n',
    );
    expect(await answer).toMatch(/^HTTP\/1\.1 100 /);
    expect(executeSlot()?.name).toBe('hook');
    answer = answered();
    socket.write('2\r\n{}\r\n0\r\n\r\n');
    expect(await answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(executeSlot()?.name).toBe('bound onParserExecute');
    socket.destroy();
  });

  it('row 10: Expect with an unknown expectation gets the JSON 417 with the request id', async () => {
    const answer = await rawExchange(
      stack.gw.url,
      'POST /predict HTTP/1.1\r\nHost: gw\r\nX-Request-ID: expect-1\r\nExpect: bogus\r\nContent-Length: 2\r\n\r\n{}',
    );
    expectGatewayError(answer, 417);
    expect(answer.headers['x-request-id']).toBe('expect-1');
    expect(receivedAs('expect-1')).toHaveLength(0);
  });

  it('underscores: headers with an underscore in their name are dropped by default', async () => {
    const answer = await rawExchange(
      stack.gw.url,
      'POST /predict HTTP/1.1\r\nHost: gw\r\nX-Request-ID: under-1\r\nX_Forwarded_For: 6.6.6.6\r\nX_Api_Role: admin\r\nX-Kept: 1\r\n' +
        'Content-Length: 2\r\nConnection: close\r\n\r\n{}',
    );
    expect(answer.status).toBe(200);
    const [sent] = receivedAs('under-1');
    expect(sent.headers['x_forwarded_for']).toBeUndefined();
    expect(sent.headers['x_api_role']).toBeUndefined();
    expect(sent.headers['x-kept']).toBe('1');
    expect(sent.headers['x-forwarded-for']).toBe('127.0.0.1');
  });
});

describe('HTTP edges: underscores allowed (e2e)', () => {
  it('forwards headers with underscores when HEADERS_WITH_UNDERSCORES=allow', async () => {
    const upstream = await new Upstream().start();
    const gw = await startGateway({
      BACKEND_URL: upstream.url,
      HEADERS_WITH_UNDERSCORES: 'allow',
    });
    try {
      await request(gw.url)
        .post('/predict')
        .set('x_model_hint', 'fast')
        .send('{}')
        .expect(200);
      expect(upstream.received[0].headers['x_model_hint']).toBe('fast');
    } finally {
      await gw.close();
      await upstream.stop();
    }
  });
});

// Row 1 runs the built gateway as a real process with real keep-alive clients.
describe('HTTP edges: shutdown with keep-alive clients (e2e, process)', () => {
  let upstream: Upstream;
  let gw: GatewayProcess | undefined;
  let agents: Agent[] = [];

  beforeEach(async () => {
    upstream = await new Upstream().start();
  });

  afterEach(async () => {
    for (const agent of agents) agent.destroy();
    agents = [];
    await gw?.stop();
    gw = undefined;
    await upstream.stop();
  });

  function keepAliveAgent(): Agent {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    return agent;
  }

  /** POSTs /predict through `agent`; resolves with the answer and whether it reused a socket. */
  function post(
    base: string,
    agent: Agent,
  ): Promise<{
    res: IncomingMessage;
    socket: Socket;
    body: string;
    reused: boolean;
    at: number;
  }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: new URL(base).port,
          method: 'POST',
          path: '/predict',
          agent,
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          const socket = res.socket;
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () =>
            resolve({
              res,
              socket,
              body,
              reused: req.reusedSocket,
              at: Date.now(),
            }),
          );
        },
      );
      req.on('error', reject);
      req.end('{"request":{"text":"x"}}');
    });
  }

  const logged = (prefix: string) => (l: Record<string, unknown>) =>
    typeof l.msg === 'string' && l.msg.startsWith(prefix);

  it('row 1: the answer in flight at SIGTERM carries Connection: close, idle connections close, exit within ~1 s of it', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const inFlight = new Promise<void>((resolve) => (arrived = resolve));
    let predicts = 0;
    upstream.handler = async (req, res) => {
      if (req.url === '/predict' && ++predicts === 2) {
        arrived();
        await held;
      }
      json(res, 200, { sentiment: 'POSITIVE' });
    };
    gw = await spawnGateway({
      BACKEND_URL: upstream.url,
      SHUTDOWN_DELAY_MS: '0',
      SHUTDOWN_TIMEOUT_MS: '30000',
    });
    // An idle keep-alive connection, opened and used before the signal.
    const idleAgent = keepAliveAgent();
    const warm = await post(gw.url, idleAgent);
    const idleSocket = warm.socket;
    const idleClosed = once(idleSocket, 'close');

    const busyAgent = keepAliveAgent();
    const pending = post(gw.url, busyAgent);
    await inFlight;
    gw.child.kill('SIGTERM');
    await gw.waitForLine(logged('shutdown started'));
    await idleClosed;
    release();
    const answer = await pending;
    expect(answer.res.statusCode).toBe(200);
    expect(answer.res.headers.connection).toBe('close');
    expect(await gw.exited).toBe(0);
    const exitedAfterMs = Date.now() - answer.at;
    expect(exitedAfterMs).toBeLessThan(2000);
  });

  it('row 1: a request on an open keep-alive connection during SHUTDOWN_DELAY_MS is served with Connection: close', async () => {
    gw = await spawnGateway({
      BACKEND_URL: upstream.url,
      SHUTDOWN_DELAY_MS: '1500',
      SHUTDOWN_TIMEOUT_MS: '30000',
    });
    const agent = keepAliveAgent();
    const first = await post(gw.url, agent);
    expect(first.res.headers.connection).toBe('keep-alive');
    gw.child.kill('SIGTERM');
    await gw.waitForLine(logged('shutdown started'));
    const second = await post(gw.url, agent);
    expect(second.reused).toBe(true);
    expect(second.res.statusCode).toBe(200);
    expect(second.res.headers.connection).toBe('close');
    expect(await gw.exited).toBe(0);
  });

  it('row 1: a request finished on an open connection after the listener closed is served, not refused', async () => {
    gw = await spawnGateway({
      BACKEND_URL: upstream.url,
      SHUTDOWN_DELAY_MS: '0',
      SHUTDOWN_TIMEOUT_MS: '30000',
    });
    const socket = await openSocket(gw.url);
    socket.on('error', () => undefined);
    let text = '';
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    const closed = once(socket, 'close');
    // Headers begun before the signal: the connection is not idle.
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: gw\r\nX-Request-ID: late-1\r\n',
    );
    // Let the gateway read the first bytes before the signal.
    await new Promise<void>((resolve) => setImmediate(resolve));
    gw.child.kill('SIGTERM');
    await gw.waitForLine(logged('listener closing'));
    socket.write('Content-Length: 2\r\n\r\n{}');
    await closed;
    const answer = parseAnswer(text, true);
    expect(answer.status).toBe(200);
    expect(answer.headers['x-request-id']).toBe('late-1');
    expect(answer.headers.connection).toBe('close');
    expect(await gw.exited).toBe(0);
  });
});
