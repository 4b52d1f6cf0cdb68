import request from 'supertest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchingService } from '../src/batching/batching.service.js';
import { expectGatewayError } from './support/expect.js';
import {
  metricsText,
  type RunningGateway,
  startGateway,
} from './support/gateway.js';
import { OtlpReceiver } from './support/otlp-receiver.js';
import { spawnGateway } from './support/process.js';
import { sample } from './support/raw.js';
import { json, Upstream } from './support/upstream.js';
import { until } from './support/wait.js';

const body = (text: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ request: { text, ...extra } });

/** The texts a batch call carried. */
const textsOf = (raw: Buffer) =>
  (JSON.parse(raw.toString()) as { request: { texts: string[] } }).request
    .texts;

/**
 * A model server speaking the contract, with knobs: `/predict` answers one
 * text, `/batch_predict` a list (in order); the texts `invalid` and `crash`
 * make a call fail (422, 500) as a validating, then a crashing model would;
 * `hold` keeps answers back until released, so tests can make requests
 * queue behind a busy slot.
 */
class Model {
  readonly upstream: Upstream;
  readonly batches: string[][] = [];
  readonly singles: string[] = [];
  /** Answers held back while true (released by `release`). */
  hold = false;
  /** What /batch_predict answers instead of results, when set. */
  batchAnswer: { status: number; body: unknown } | undefined;
  private held: (() => void)[] = [];

  constructor() {
    this.upstream = new Upstream((req, res, raw) => this.handle(req, res, raw));
  }

  release(): void {
    this.hold = false;
    for (const answer of this.held.splice(0)) answer();
  }

  get heldCount(): number {
    return this.held.length;
  }

  private handle(req: IncomingMessage, res: ServerResponse, raw: Buffer) {
    if (req.url?.endsWith('/healthz')) return json(res, 200, { status: 'ok' });
    const answer = () => this.answer(req, res, raw);
    if (this.hold) this.held.push(answer);
    else answer();
  }

  private answer(req: IncomingMessage, res: ServerResponse, raw: Buffer) {
    let parsed: { request?: { text?: string; texts?: string[] } };
    try {
      parsed = JSON.parse(raw.toString() || '{}') as typeof parsed;
    } catch {
      // A model server answers a body it cannot read; it does not crash.
      return json(res, 400, { error: 'not JSON' });
    }
    if (req.url?.endsWith('/batch_predict') || req.url?.endsWith('/batch')) {
      const texts = parsed.request?.texts ?? [];
      this.batches.push(texts);
      if (this.batchAnswer)
        return json(res, this.batchAnswer.status, this.batchAnswer.body);
      if (texts.includes('crash')) return json(res, 500, { error: 'boom' });
      if (texts.includes('invalid'))
        return json(res, 422, { error: 'Invalid input', detail: [] });
      return json(res, 200, {
        results: texts.map((text) => ({ text, sentiment: 'POSITIVE' })),
        metadata: { count: texts.length },
      });
    }
    const text = parsed.request?.text ?? '';
    this.singles.push(text);
    if (text === 'crash') return json(res, 500, { error: 'boom' });
    if (text === 'invalid')
      return json(res, 422, { error: 'Invalid input', detail: ['text'] });
    json(res, 200, {
      text,
      sentiment: 'POSITIVE',
      request_id: req.headers['x-request-id'],
      timestamp: 'from the model',
    });
  }
}

describe('Micro-batching (e2e)', () => {
  let model: Model;
  let gw: RunningGateway | undefined;

  beforeEach(async () => {
    model = new Model();
    await model.upstream.start();
  });

  afterEach(async () => {
    model.release();
    await gw?.close();
    gw = undefined;
    await model.upstream.stop();
  });

  const start = (env: Record<string, string> = {}) =>
    startGateway({
      BACKEND_URL: model.upstream.url,
      BATCH_MAX_SIZE: '100',
      // One call at a time: requests sent while it runs form the next batch.
      BACKEND_MAX_CONCURRENCY: '1',
      RETRY_ATTEMPTS: '0',
      ...env,
    }).then((started) => (gw = started));

  const post = (
    payload: string,
    headers: Record<string, string> = {},
    path = '/predict',
  ) =>
    request(gw!.url)
      .post(path)
      .set({ 'content-type': 'application/json', ...headers })
      .send(payload);

  /** Items waiting in the gateway for their batch. */
  const waiting = () => gw!.app.get(BatchingService).waiting;

  /** A first request holds the only slot; `texts` then queue and go as one batch once it answers. */
  async function batchOf(
    texts: string[],
    headers: (i: number) => Record<string, string> = () => ({}),
    batchable = texts.length,
  ) {
    model.hold = true;
    const first = post(body('first')).then((r) => r);
    await until(() => model.heldCount === 1);
    const answers = texts.map((text, i) =>
      post(body(text), headers(i)).then((r) => r),
    );
    // Every request is in the gateway's batch queue before the slot frees.
    await until(() => waiting() === batchable);
    model.release();
    return { first: await first, answers: await Promise.all(answers) };
  }

  it('is off by default: every request goes alone, no batch metrics', async () => {
    gw = await startGateway({ BACKEND_URL: model.upstream.url });
    const answers = await Promise.all(
      ['a', 'b', 'c'].map((text) => post(body(text))),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(model.batches).toEqual([]);
    expect(model.singles.sort()).toEqual(['a', 'b', 'c']);
    expect(await metricsText(gw)).not.toContain('gateway_batch_size');
  });

  it('gives each client of a batch the answer for its own text, in /predict shape', async () => {
    await start();
    const texts = Array.from({ length: 20 }, (_, i) => `text ${i}`);
    const { first, answers } = await batchOf(
      texts,
      (i): Record<string, string> =>
        i === 0 ? { 'x-request-id': 'client-0' } : {},
    );
    expect(first.status).toBe(200);
    // The first went alone (a free slot), the rest as one batch, in order.
    expect(model.singles).toEqual(['first']);
    expect(model.batches).toEqual([texts]);
    answers.forEach((answer, i) => {
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toBe('application/json');
      expect(answer.body).toMatchObject({
        text: texts[i],
        sentiment: 'POSITIVE',
        request_id: answer.headers['x-request-id'],
      });
      expect(Number.isNaN(Date.parse(String(answer.body.timestamp)))).toBe(
        false,
      );
      // Relayed like the backend's own answer: no gateway headers.
      expect(answer.headers['x-frame-options']).toBeUndefined();
    });
    expect(answers[0].headers['x-request-id']).toBe('client-0');
    const metrics = await metricsText(gw!);
    expect(sample(metrics, 'gateway_batch_size_sum')).toBe(20);
    // Every item's wait, the one that went alone too.
    expect(sample(metrics, 'gateway_batch_wait_seconds_count')).toBe(21);
    expect(sample(metrics, 'gateway_batches_total{status="200"}')).toBe(1);
  });

  it("answers with the body's request_id when it is a string", async () => {
    await start();
    const { answers } = await batchOf(['x', 'y']);
    expect(answers[0].body.request_id).toBe(answers[0].headers['x-request-id']);
    model.hold = true;
    const first = post(body('first')).then((r) => r);
    await until(() => model.heldCount === 1);
    const mine = post(body('z', { request_id: 'mine' })).then((r) => r);
    const other = post(body('w', { request_id: null })).then((r) => r);
    await until(() => waiting() === 2);
    model.release();
    await first;
    expect((await mine).body.request_id).toBe('mine');
    const w = await other;
    expect(w.body.request_id).toBe(w.headers['x-request-id']);
  });

  it.each([
    ['another field beside the text', body('t', { lang: 'en' })],
    ['the text not a string', JSON.stringify({ request: { text: 7 } })],
    ['not JSON', 'text=hello'],
  ])('sends a body with %s alone, byte for byte', async (_what, payload) => {
    await start();
    model.hold = true;
    const first = post(body('first')).then((r) => r);
    await until(() => model.heldCount === 1);
    const odd = post(payload).then((r) => r);
    const plain = post(body('plain')).then((r) => r);
    await until(() => waiting() === 1);
    model.release();
    await Promise.all([first, odd, plain]);
    expect(model.batches).toEqual([]);
    const received = model.upstream.received.map((r) => r.body.toString());
    expect(received).toContain(payload);
  });

  it('sends alone a request with a query string, query and all', async () => {
    await start();
    const { answers } = await batchOf(['a', 'b'], () => ({}), 2);
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    model.hold = true;
    const first = post(body('first')).then((r) => r);
    await until(() => model.heldCount === 1);
    const queried = post(body('q'), {}, '/predict?lang=en').then((r) => r);
    const plain = post(body('p')).then((r) => r);
    await until(() => waiting() === 1);
    model.release();
    await Promise.all([first, queried, plain]);
    const q = model.upstream.received.find((r) => r.body.includes('"q"'));
    expect(q?.url).toBe('/predict?lang=en');
  });

  it('sends alone a request carrying a credential the backend would get', async () => {
    await start();
    const { answers } = await batchOf(
      ['a', 'b', 'c'],
      (i): Record<string, string> =>
        i === 1 ? { authorization: 'Bearer user-b' } : {},
      2,
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(model.batches.flat()).not.toContain('b');
    const b = model.upstream.received.find((r) => r.body.includes('"b"'));
    expect(b?.url).toBe('/predict');
    expect(b?.headers.authorization).toBe('Bearer user-b');
  });

  it('fails only the bad items: a refused batch is split until the invalid and crashing items stand alone', async () => {
    await start();
    const texts = ['g1', 'invalid', 'g2', 'crash', 'g3', 'g4'];
    const { answers } = await batchOf(texts);
    const byText = new Map(texts.map((t, i) => [t, answers[i]]));
    for (const good of ['g1', 'g2', 'g3', 'g4']) {
      expect(byText.get(good)!.status).toBe(200);
      expect(byText.get(good)!.body.text).toBe(good);
    }
    // The bad ones get the backend's own answer to them, as /predict gives it.
    expect(byText.get('invalid')!.status).toBe(422);
    expect(byText.get('invalid')!.body).toEqual({
      error: 'Invalid input',
      detail: ['text'],
    });
    expect(byText.get('crash')!.status).toBe(500);
    expect(model.singles).toEqual(expect.arrayContaining(['invalid', 'crash']));
    expect(model.batches[0]).toEqual(texts);
    const metrics = await metricsText(gw!);
    expect(
      sample(metrics, 'gateway_batches_total{status="422"}'),
    ).toBeGreaterThan(0);
    expect(
      sample(metrics, 'gateway_batches_total{status="500"}'),
    ).toBeGreaterThan(0);
  });

  it('answers 502 to every client when the batch answer does not hold one result per item', async () => {
    await start();
    model.batchAnswer = {
      status: 200,
      body: { results: [{ text: 'only one' }] },
    };
    const { answers } = await batchOf(['a', 'b', 'c']);
    for (const answer of answers) {
      expectGatewayError(
        { status: answer.status, headers: answer.headers, body: answer.text },
        502,
      );
    }
    expect(new Set(answers.map((a) => String(a.body.request_id))).size).toBe(3);
    expect(
      sample(await metricsText(gw!), 'gateway_batches_total{status="invalid"}'),
    ).toBe(1);
  });

  it('gives each client its own JSON error when the batch endpoint answers 503 (after the retry policy)', async () => {
    await start();
    model.batchAnswer = { status: 503, body: { error: 'busy' } };
    const { answers } = await batchOf(['a', 'b']);
    for (const answer of answers)
      expectGatewayError(
        { status: answer.status, headers: answer.headers, body: answer.text },
        503,
      );
    expect(answers[0].body.request_id).not.toBe(answers[1].body.request_id);
  });

  it('answers 503 overloaded at once to an item whose deadline passes while it waits, 504 to one already sent', async () => {
    // Batches of two, one call at a time: c and d still wait when their
    // deadline (400 ms from arrival) passes; a and b were sent by then.
    await start({ BACKEND_TIMEOUT_MS: '400', BATCH_MAX_SIZE: '2' });
    model.hold = true;
    const first = post(body('first')).then((r) => r);
    await until(() => model.heldCount === 1);
    const started = performance.now();
    const answers = ['a', 'b', 'c', 'd'].map((text) =>
      post(body(text)).then((r) => r),
    );
    const [a, b, c, d] = await Promise.all(answers);
    expect((await first).status).toBe(504);
    for (const sent of [a, b])
      expectGatewayError(
        { status: sent.status, headers: sent.headers, body: sent.text },
        504,
      );
    for (const waited of [c, d]) {
      expectGatewayError(
        { status: waited.status, headers: waited.headers, body: waited.text },
        503,
      );
      expect(waited.body.code).toBe('overloaded');
      expect(waited.headers['retry-after']).toBe('1');
    }
    expect(performance.now() - started).toBeLessThan(2000);
    const sent = model.upstream.received.filter((r) => /batch/.test(r.url));
    expect(sent.map((r) => textsOf(r.body))).toEqual([['a', 'b']]);
    expect(
      sample(await metricsText(gw!), 'gateway_shed_total{reason="deadline"}'),
    ).toBe(2);
  });

  it('takes out a client that leaves before its batch is sent', async () => {
    await start();
    model.hold = true;
    const first = post(body('first')).then((r) => r);
    await until(() => model.heldCount === 1);
    const stays = post(body('stays')).then((r) => r);
    const stays2 = post(body('stays too')).then((r) => r);
    const leaving = post(body('leaves'));
    const left = leaving.then(
      () => 'answered',
      () => 'aborted',
    );
    await until(() => waiting() === 3);
    leaving.abort();
    expect(await left).toBe('aborted');
    await until(() => waiting() === 2);
    model.release();
    await Promise.all([first, stays, stays2]);
    expect(model.batches).toEqual([['stays', 'stays too']]);
  });

  it('looks up the cache per request first and fills it per item', async () => {
    await start({ CACHE_TTL_SECONDS: '60' });
    const { answers } = await batchOf(['a', 'b']);
    expect(answers.map((a) => a.headers['x-cache'])).toEqual(['MISS', 'MISS']);
    const again = await post(body('b'));
    expect([again.status, again.headers['x-cache']]).toEqual([200, 'HIT']);
    expect(again.body.text).toBe('b');
    expect(model.batches).toHaveLength(1);
  });

  it('batches per model version: versions never share a batch; a version may have its own batch endpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'batch-routes-'));
    const file = join(dir, 'routes.yaml');
    writeFileSync(
      file,
      `models:
  sentiment:
    versions:
      - name: v1
        urls: ["${model.upstream.url}"]
        weight: 1
      - name: v2
        urls: ["${model.upstream.url}/v2"]
        weight: 1
        batching: {path: /batch}
`,
    );
    try {
      await start({
        BACKEND_URL: '',
        ROUTES_FILE: file,
      });
      model.hold = true;
      const pin = (v: string) => ({ 'x-model-version': v });
      const firsts = ['v1', 'v2'].map((v) =>
        post(body('first'), pin(v)).then((r) => r),
      );
      await until(() => model.heldCount === 2);
      const texts = ['a', 'b', 'c', 'd'];
      const answers = texts.map((text, i) =>
        post(body(text), pin(i % 2 ? 'v2' : 'v1')).then((r) => r),
      );
      await until(() => waiting() === 4);
      model.release();
      await Promise.all(firsts);
      const done = await Promise.all(answers);
      done.forEach((answer, i) => {
        expect(answer.status).toBe(200);
        expect(answer.body.text).toBe(texts[i]);
        expect(answer.headers['x-model-version']).toBe(i % 2 ? 'v2' : 'v1');
      });
      const calls = model.upstream.received
        .filter((r) => /batch/.test(r.url))
        .map((r) => [r.url, textsOf(r.body)]);
      expect(calls.sort()).toEqual([
        ['/batch_predict', ['a', 'c']],
        ['/v2/batch', ['b', 'd']],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Micro-batching with tracing (e2e)', () => {
  it("each request's server span links to the batch call's client span", async () => {
    const receiver = await new OtlpReceiver().start();
    const model = new Model();
    await model.upstream.start();
    const gw = await startGateway({
      BACKEND_URL: model.upstream.url,
      BATCH_MAX_SIZE: '10',
      BACKEND_MAX_CONCURRENCY: '1',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '20',
      OTEL_TRACES_SAMPLER: 'always_on',
    });
    try {
      const post = (text: string, id: string) =>
        request(gw.url)
          .post('/predict')
          .set({ 'content-type': 'application/json', 'x-request-id': id })
          .send(body(text))
          .then((r) => r);
      model.hold = true;
      const first = post('first', 'first');
      await until(() => model.heldCount === 1);
      const items = ['a', 'b', 'c'].map((text) => post(text, `item-${text}`));
      await until(() => gw.app.get(BatchingService).waiting === 3);
      model.release();
      await Promise.all([first, ...items]);
      const servers = () =>
        receiver.spans.filter(
          (s) =>
            s.kind === 2 &&
            String(s.attributes['gateway.request_id']).startsWith('item-'),
        );
      await until(() => servers().length === 3);
      const batchSpan = receiver.spans.find(
        (s) =>
          s.kind === 3 &&
          String(s.attributes['url.full']).endsWith('/batch_predict'),
      )!;
      expect(batchSpan).toBeDefined();
      // Under the first item's trace; the other two link to it.
      const owner = servers().find((s) => s.traceId === batchSpan.traceId)!;
      expect(batchSpan.parentSpanId).toBe(owner.spanId);
      const others = servers().filter((s) => s !== owner);
      expect(others).toHaveLength(2);
      for (const span of others)
        expect(span.links).toEqual([
          { traceId: batchSpan.traceId, spanId: batchSpan.spanId },
        ]);
    } finally {
      model.release();
      await gw.close();
      await model.upstream.stop();
      await receiver.stop();
    }
  });
});

describe('Micro-batching: access line (process e2e)', () => {
  it('logs batch_id and batch_size on each request of a batch', async () => {
    const model = new Model();
    await model.upstream.start();
    const gw = await spawnGateway({
      BACKEND_URL: model.upstream.url,
      BATCH_MAX_SIZE: '10',
      BACKEND_MAX_CONCURRENCY: '1',
    });
    try {
      model.hold = true;
      const first = request(gw.url)
        .post('/predict')
        .set('content-type', 'application/json')
        .set('x-request-id', 'alone-1')
        .send(body('first'))
        .then((r) => r);
      await until(() => model.heldCount === 1);
      const pair = ['p-1', 'p-2'].map((id) =>
        request(gw.url)
          .post('/predict')
          .set('content-type', 'application/json')
          .set('x-request-id', id)
          .send(body(id))
          .then((r) => r),
      );
      await until(async () => {
        const text = await (await fetch(`${gw.url}/metrics`)).text();
        return sample(text, 'gateway_batch_queue_items') === 2;
      });
      model.release();
      await Promise.all([first, ...pair]);
      const line = await gw.waitForLine((l) => l.request_id === 'p-2');
      const other = await gw.waitForLine((l) => l.request_id === 'p-1');
      expect(line).toMatchObject({ status: 200, batch_size: 2 });
      expect(line.batch_id).toMatch(/^batch-\d+$/);
      expect(other.batch_id).toBe(line.batch_id);
      const alone = await gw.waitForLine((l) => l.request_id === 'alone-1');
      expect(alone.batch_id).toBeUndefined();
    } finally {
      model.release();
      await gw.stop();
      await model.upstream.stop();
    }
  });
});
