import request from 'supertest';
import { type IncomingMessage, request as httpRequest } from 'node:http';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { Upstream } from './support/upstream.js';

/**
 * Answers without Content-Length (Transfer-Encoding: chunked), as Node's
 * writeHead + end, Go's net/http past 4 KB and FastAPI's StreamingResponse
 * send them: cheap like sized ones when short, relayed as they arrive when
 * long, cached and retried like any other.
 */
describe('Chunked answers (e2e)', () => {
  const upstreams: Upstream[] = [];
  let gw: RunningGateway | undefined;

  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    await Promise.all(upstreams.splice(0).map((u) => u.stop()));
  });

  /** A backend that answers every prediction chunked, piece by piece (a piece may wait). */
  const chunkedBackend = async (
    pieces: () => (string | Promise<string>)[],
    { status = 200, type = 'application/json' } = {},
  ) => {
    const up = await new Upstream(async (req, res) => {
      if (req.url === '/healthz') return void res.end('{"status":"ok"}');
      res.writeHead(status, { 'content-type': type, 'x-backend': 'chunked' });
      for (const piece of pieces()) res.write(await piece);
      res.end();
    }).start();
    upstreams.push(up);
    return up;
  };

  const post = (body = '{"request":{"text":"hello"}}') =>
    request(gw!.url)
      .post('/predict')
      .set('content-type', 'application/json')
      .send(body);

  /** POST /predict read as it streams; resolves at the answer's head. */
  const open = (): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const req = httpRequest(`${gw!.url}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      req.on('response', resolve).on('error', reject);
      req.end('{"request":{"text":"stream"}}');
    });
  const firstChunk = (res: IncomingMessage) =>
    new Promise<Buffer>((resolve) => res.once('data', resolve));

  it('a short chunked answer goes out whole, with its length and its headers', async () => {
    const up = await chunkedBackend(() => ['{"sentiment":', '"POSITIVE"}']);
    gw = await startGateway({ BACKEND_URL: up.url });
    const res = await post();
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ sentiment: 'POSITIVE' });
    expect(res.headers['content-length']).toBe(
      String('{"sentiment":"POSITIVE"}'.length),
    );
    expect(res.headers['transfer-encoding']).toBeUndefined();
    expect(res.headers['x-backend']).toBe('chunked');
  });

  it('a short chunked answer is cached (MISS, then HIT)', async () => {
    const up = await chunkedBackend(() => [
      '{"n":',
      String(Math.random()),
      '}',
    ]);
    gw = await startGateway({ BACKEND_URL: up.url, CACHE_TTL_SECONDS: '60' });
    const first = await post();
    const second = await post();
    expect([first.headers['x-cache'], second.headers['x-cache']]).toEqual([
      'MISS',
      'HIT',
    ]);
    expect(second.body).toEqual(first.body);
    expect(up.received).toHaveLength(1);
  });

  it('a long chunked answer is relayed as it arrives and stored when complete', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let calls = 0;
    const head = `{"pad":"${'x'.repeat(100 * 1024)}`;
    const up = await chunkedBackend(() =>
      ++calls > 1
        ? [head, '","n":2}']
        : // The client must see the first 100 KiB before the backend ends.
          [head, released.then(() => '","n":1}')],
    );
    gw = await startGateway({
      BACKEND_URL: up.url,
      CACHE_TTL_SECONDS: '60',
      CACHE_MAX_BODY_BYTES: String(1024 * 1024),
    });
    // The held pieces go out once past the hold, before the backend's end.
    const res = await open();
    expect(res.headers['x-cache']).toBe('MISS');
    expect(res.headers['transfer-encoding']).toBe('chunked');
    const chunks = [await firstChunk(res)];
    release();
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const whole = JSON.parse(Buffer.concat(chunks).toString()) as {
      n: number;
    };
    expect(whole.n).toBe(1);
    const again = await post('{"request":{"text":"stream"}}');
    expect([again.headers['x-cache'], again.body.n]).toEqual(['HIT', 1]);
    expect(again.headers['content-length']).toBe(
      String(head.length + '","n":1}'.length),
    );
  });

  it('a chunked answer longer than CACHE_MAX_BODY_BYTES is relayed whole and not stored', async () => {
    const up = await chunkedBackend(() => [
      `{"pad":"${'y'.repeat(200 * 1024)}",`,
      `"n":${Math.random()}}`,
    ]);
    gw = await startGateway({
      BACKEND_URL: up.url,
      CACHE_TTL_SECONDS: '60',
      CACHE_MAX_BODY_BYTES: String(128 * 1024),
    });
    const first = await post();
    const second = await post();
    expect([first.status, first.headers['x-cache']]).toEqual([200, 'MISS']);
    expect(second.headers['x-cache']).toBe('MISS');
    expect(JSON.parse(first.text).pad).toHaveLength(200 * 1024);
    expect(up.received).toHaveLength(2);
  });

  it('a long chunked answer that breaks off is cut for the client and not stored', async () => {
    let calls = 0;
    const up = await new Upstream((req, res) => {
      if (req.url === '/healthz') return void res.end('{"status":"ok"}');
      calls++;
      res.writeHead(200, { 'content-type': 'application/json' });
      const pad = `{"pad":"${'z'.repeat(100 * 1024)}`;
      if (calls === 1) res.write(pad, () => res.socket?.destroy());
      else res.end(`${pad}"}`);
    }).start();
    upstreams.push(up);
    gw = await startGateway({ BACKEND_URL: up.url, CACHE_TTL_SECONDS: '60' });
    const res = await open();
    const cut = await new Promise<string>((resolve) => {
      res.on('error', () => resolve('error'));
      res.on('aborted', () => resolve('aborted'));
      res.on('end', () => resolve(res.complete ? 'complete' : 'incomplete'));
      res.resume();
    });
    expect([res.statusCode, cut]).toEqual([200, 'aborted']);
    const again = await post('{"request":{"text":"stream"}}');
    expect([again.status, again.headers['x-cache']]).toEqual([200, 'MISS']);
  });

  it('server-sent events are relayed as they come, never held', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const up = await chunkedBackend(
      () => ['data: 1\n\n', released.then(() => 'data: 2\n\n')],
      { type: 'text/event-stream' },
    );
    gw = await startGateway({ BACKEND_URL: up.url });
    const res = await open();
    expect((await firstChunk(res)).toString()).toBe('data: 1\n\n');
    release();
    let rest = '';
    for await (const chunk of res) rest += String(chunk);
    expect(rest).toBe('data: 2\n\n');
  });

  it('a chunked 503 is retried on another backend like any other', async () => {
    const busy = await chunkedBackend(() => ['{"error":', '"busy"}'], {
      status: 503,
    });
    const good = await chunkedBackend(() => ['{"sentiment":', '"NEGATIVE"}']);
    gw = await startGateway({
      BACKEND_URLS: `${busy.url},${good.url}`,
      LB_POLICY: 'round_robin',
      RETRY_ATTEMPTS: '1',
    });
    for (let i = 0; i < 4; i++) {
      const res = await post();
      expect([res.status, res.body.sentiment]).toEqual([200, 'NEGATIVE']);
    }
    expect(busy.received.length).toBeGreaterThan(0);
  });

  it('a short chunked answer that breaks off fails the attempt, which is retried', async () => {
    const broken = await new Upstream((req, res) => {
      if (req.url === '/healthz') return void res.end('{"status":"ok"}');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"sentiment":', () => res.socket?.destroy());
    }).start();
    upstreams.push(broken);
    const good = await chunkedBackend(() => ['{"sentiment":', '"POSITIVE"}']);
    gw = await startGateway({
      BACKEND_URLS: `${broken.url},${good.url}`,
      LB_POLICY: 'round_robin',
      RETRY_ATTEMPTS: '1',
    });
    for (let i = 0; i < 4; i++) {
      const res = await post();
      expect([res.status, res.body.sentiment]).toEqual([200, 'POSITIVE']);
    }
    expect(broken.received.length).toBeGreaterThan(0);
  });
});
