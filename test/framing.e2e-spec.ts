import { expectGatewayError, UUID_V4 } from './support/expect.js';
import { metricsText, withGateway } from './support/gateway.js';
import { spawnGateway } from './support/process.js';
import {
  openCollecting,
  parseAnswer,
  rawExchange,
  sample,
} from './support/raw.js';
import { json, sentimentHandler, Upstream } from './support/upstream.js';
import { until } from './support/wait.js';

/** Splits the answers a connection received, in order. */
function answersIn(text: string): ReturnType<typeof parseAnswer>[] {
  const answers = [];
  let rest = text;
  while (rest.startsWith('HTTP/')) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) break;
    const length = Number(
      /\r\ncontent-length: *(\d+)/i.exec(rest.slice(0, end))?.[1] ?? 0,
    );
    answers.push(parseAnswer(rest.slice(0, end + 4 + length), false));
    rest = rest.slice(end + 4 + length);
  }
  return answers;
}

/** Request framing and URLs a hostile client tries (second outside review, rows 5, 10, 11). */
describe('Framing and URL edges (e2e)', () => {
  const stack = withGateway({ RETRY_ATTEMPTS: '0' });

  beforeEach(() => {
    stack.upstream.received.length = 0;
  });

  it('row 5: header text inside a body is never taken for the next request: both answered, nothing refused', async () => {
    // B' travels as A's body; the real B differs only in the space after "Host:".
    const head = (host: string) =>
      `POST /predict HTTP/1.1\r\nHost:${host}\r\nContent-Type: application/json\r\nX-Request-ID: b\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const inner = `${head(' x')}7FFFFFFF\r\n`;
    const a = `POST /predict HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nX-Request-ID: a\r\nContent-Length: ${inner.length}\r\n\r\n`;
    const b = `${head('x')}2\r\n{}\r\n0\r\n\r\n`;
    stack.upstream.handler = (_req, res) => json(res, 200, { ok: true });
    const conn = await openCollecting(stack.gw.url);
    conn.socket.write(a);
    // Nothing to await: the gateway answers nothing until A's body. The pause
    // (the reviewer's 50 ms between writes) makes it read A's head alone, so
    // the next read starts inside A's body, with B' where a request could be.
    await new Promise((resolve) => setTimeout(resolve, 50));
    // A's body and B in one write, so the gateway reads them together.
    conn.socket.write(inner + b);
    await until(() => answersIn(conn.text()).length === 2);
    const [first, second] = answersIn(conn.text());
    expect([first.headers['x-request-id'], first.status]).toEqual(['a', 200]);
    expect([second.headers['x-request-id'], second.status]).toEqual(['b', 200]);
    expect(
      stack.upstream.received.map((r) => r.headers['x-request-id']),
    ).toEqual(['a', 'b']);
    conn.socket.destroy();
    stack.upstream.handler = sentimentHandler;
  });

  it.each([
    ['POST /%ff', 400],
    ['POST /predict%ff', 400],
    ['POST /models/%ff/predict', 400],
    [`POST /models/${'m'.repeat(101)}/predict`, 414],
  ])(
    'row 10: %s gets the gateway JSON error with its request id, counted',
    async (line, status) => {
      const before = sample(
        await metricsText(stack.gw),
        `gateway_http_requests_total{method="POST",endpoint="unmatched",status="${status}"}`,
      );
      const answer = await rawExchange(
        stack.gw.url,
        `${line} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}`,
      );
      expectGatewayError(answer, status, { strict: true });
      expect(answer.headers['x-request-id']).toMatch(UUID_V4);
      expect(answer.headers['x-frame-options']).toBe('DENY');
      expect(JSON.parse(answer.body)).not.toHaveProperty('code');
      await until(
        async () =>
          sample(
            await metricsText(stack.gw),
            `gateway_http_requests_total{method="POST",endpoint="unmatched",status="${status}"}`,
          ) ===
          before + 1,
      );
      expect(stack.upstream.received).toHaveLength(0);
    },
  );

  it.each([
    ['HTTP/1.0 without Host', 'POST /predict HTTP/1.0\r\n'],
    ['an empty Host', 'POST /predict HTTP/1.1\r\nHost:\r\n'],
  ])(
    "row 11: with %s, the client's X-Forwarded-Host never reaches the backend",
    async (_what, head) => {
      const answer = await rawExchange(
        stack.gw.url,
        `${head}Connection: close\r\nX-Forwarded-Host: a b/c?d\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`,
      );
      expect(answer.status).toBe(200);
      expect(stack.upstream.received).toHaveLength(1);
      expect(
        stack.upstream.received[0].headers['x-forwarded-host'],
      ).toBeUndefined();
    },
  );
});

describe('Framing: access line of a refused URL (process e2e)', () => {
  it('row 10: logs the refused URL like any other answer, with its request id', async () => {
    const upstream = await new Upstream().start();
    const gw = await spawnGateway({ BACKEND_URL: upstream.url });
    try {
      const answer = await rawExchange(
        gw.url,
        'POST /predict%ff HTTP/1.1\r\nHost: gw\r\nX-Request-ID: bad-url-1\r\nContent-Length: 0\r\n\r\n',
      );
      expect(answer.headers['x-request-id']).toBe('bad-url-1');
      const line = await gw.waitForLine((l) => l.request_id === 'bad-url-1');
      expect(line).toMatchObject({
        status: 400,
        route: 'unmatched',
        method: 'POST',
        msg: 'request completed',
      });
    } finally {
      await gw.stop();
      await upstream.stop();
    }
  });
});
