import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import request from 'supertest';
import { CaptureService } from '../src/capture/capture.service.js';
import {
  HeldExchange,
  PackedExchange,
} from '../src/capture/packed-exchange.js';
import { RedisSink } from '../src/capture/redis-sink.js';
import { CloudEventsReceiver } from './support/cloudevents-receiver.js';
import {
  metricsText,
  type RunningGateway,
  startGateway,
} from './support/gateway.js';
import { load } from './support/load.js';
import { sample } from './support/raw.js';
import { adminCommand, hasRedisServer, RedisServer } from './support/redis.js';
import { json, Upstream } from './support/upstream.js';
import { until } from './support/wait.js';

const KEY = 'api-gateway:capture';
const body = (text: string) => JSON.stringify({ request: { text } });

/** A stream entry's fields as an object. */
function fieldsOf(entry: [string, string[]]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (let i = 0; i < entry[1].length; i += 2)
    fields[entry[1][i]] = entry[1][i + 1];
  return fields;
}

describe.skipIf(!hasRedisServer)(
  'Inference capture to a Redis stream (e2e, real redis-server)',
  () => {
    let redis: RedisServer;
    let upstream: Upstream;
    let gw: RunningGateway | undefined;

    beforeAll(async () => {
      // Small macro nodes: MAXLEN ~ trims close to the bound.
      redis = await RedisServer.start(undefined, [
        '--stream-node-max-entries',
        '10',
      ]);
    });

    beforeEach(async () => {
      upstream = await new Upstream().start();
      await adminCommand(redis.port, undefined, 'DEL', KEY);
    });

    afterEach(async () => {
      await gw?.close();
      gw = undefined;
      await upstream.stop();
    });

    afterAll(() => redis?.stop());

    const start = (env: Record<string, string | undefined> = {}) =>
      startGateway({
        BACKEND_URL: upstream.url,
        REDIS_URL: redis.url,
        CAPTURE_SAMPLE_RATE: '1',
        CAPTURE_REDIS_STREAM: 'capture',
        ...env,
      }).then((started) => (gw = started));

    const post = (payload: string, headers: Record<string, string> = {}) =>
      request(gw!.url)
        .post('/predict')
        .set({ 'content-type': 'application/json', ...headers })
        .send(payload);

    const entries = async () =>
      (await adminCommand(redis.port, undefined, 'XRANGE', KEY, '-', '+')) as [
        string,
        string[],
      ][];

    const settled = async () => {
      const capture = gw!.app.get(CaptureService);
      await until(() => capture.idle);
      return metricsText(gw!);
    };

    it('adds one entry per event, with the CloudEvents attributes as fields and the body as data; an HTTP sink beside it gets the same', async () => {
      const receiver = await new CloudEventsReceiver().start();
      try {
        await start({ CAPTURE_URL: receiver.url });
        const answer = await post(body('to the stream'), {
          'x-request-id': 'stream-1',
        });
        await settled();
        const [req, res] = (await entries()).map(fieldsOf);
        expect(req).toMatchObject({
          specversion: '1.0',
          id: 'stream-1',
          type: 'org.kubeflow.serving.inference.request',
          source: 'api-gateway/models/default',
          endpoint: '/predict',
          status: '200',
          datacontenttype: 'application/json',
          data: body('to the stream'),
        });
        expect(res).toMatchObject({
          id: 'stream-1',
          type: 'org.kubeflow.serving.inference.response',
          status: '200',
          data: answer.text,
        });
        expect(Date.parse(res.time)).toBeGreaterThan(0);
        const [httpReq, httpRes] = await receiver.exchange('stream-1');
        expect(httpReq.ce.time).toBe(req.time);
        expect(httpRes.body.toString()).toBe(res.data);
        const text = await metricsText(gw!);
        for (const sink of ['http', 'redis'])
          expect(
            sample(
              text,
              `gateway_capture_events_total{sink="${sink}",result="delivered"}`,
            ),
          ).toBe(2);
      } finally {
        await gw?.close();
        gw = undefined;
        await receiver.stop();
      }
    });

    it("gives each entry the HTTP sink's ce-* attributes, same names, order and values (the stream's script builds them apart), for full and digest bodies", async () => {
      const receiver = await new CloudEventsReceiver().start();
      try {
        await start({
          CAPTURE_URL: receiver.url,
          CAPTURE_MAX_BODY_BYTES: '60',
        });
        const traceparent = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;
        await post(body('x'.repeat(100)), {
          'x-request-id': 'same-fields',
          traceparent,
        });
        await settled();
        const stream = (await entries()).map(fieldsOf);
        const http = await receiver.exchange('same-fields');
        expect(stream).toHaveLength(2);
        expect(stream[0]).toMatchObject({ bodycapture: 'digest', traceparent });
        expect(stream[0].data).toBeUndefined();
        stream.forEach((fields, i) => {
          const { data, datacontenttype, ...attributes } = fields;
          expect(Object.entries(attributes)).toEqual(
            Object.entries(http[i].ce),
          );
          expect(datacontenttype).toBe(http[i].headers['content-type']);
          expect(data ?? '').toBe(http[i].body.toString());
        });
      } finally {
        await gw?.close();
        gw = undefined;
        await receiver.stop();
      }
    });

    it('adds only the event of a pair that a retry carries', async () => {
      const client = new Redis(redis.url);
      try {
        const sink = new RedisSink(client, KEY, 100, () => {});
        const full = (text: string, contentType?: string) => ({
          capture: 'full' as const,
          data: Buffer.from(text),
          contentType,
          size: text.length,
          sha256: undefined,
        });
        const packed = new PackedExchange({
          id: 'one-of-two',
          source: 'api-gateway/models/default',
          requestTime: '2026-01-01T00:00:00.000Z',
          responseTime: '2026-01-01T00:00:00.010Z',
          attributes: { endpoint: '/predict', status: '200' },
          request: full('{}'),
          response: full('{"label":"POSITIVE"}', 'application/json'),
        });
        const bytes = Buffer.alloc(packed.length);
        packed.writeTo(bytes, 0);
        const held = new HeldExchange(bytes);
        expect(await sink.send([{ held, kind: 'response' }])).toEqual([
          'delivered',
        ]);
        const [only, ...rest] = (await entries()).map(fieldsOf);
        expect(rest).toEqual([]);
        expect(only).toMatchObject({
          id: 'one-of-two',
          type: 'org.kubeflow.serving.inference.response',
          time: '2026-01-01T00:00:00.010Z',
          datacontenttype: 'application/json',
          data: '{"label":"POSITIVE"}',
        });
      } finally {
        client.disconnect();
      }
    });

    it('keeps the stream near CAPTURE_REDIS_MAXLEN (XADD MAXLEN ~)', async () => {
      await start({ CAPTURE_REDIS_MAXLEN: '20' });
      const result = await load(gw!.url, { total: 100, concurrency: 8 });
      expect(result.statuses.get(200)).toBe(100);
      const text = await settled();
      expect(
        sample(
          text,
          'gateway_capture_events_total{sink="redis",result="delivered"}',
        ),
      ).toBe(200);
      const length = Number(
        await adminCommand(redis.port, undefined, 'XLEN', KEY),
      );
      // Whole macro nodes of 10 entries are trimmed: at most one node over.
      expect(length).toBeGreaterThanOrEqual(20);
      expect(length).toBeLessThanOrEqual(30);
    });

    it('keeps clients whole while Redis is down: events dropped and counted, delivered again once it is back', async () => {
      await start({ CAPTURE_RETRIES: '1' });
      await redis.kill();
      try {
        const result = await load(gw!.url, { total: 50, concurrency: 8 });
        expect(result.errors).toEqual([]);
        expect(result.statuses).toEqual(new Map([[200, 50]]));
        const text = await settled();
        expect(
          sample(
            text,
            'gateway_capture_events_total{sink="redis",result="dropped"}',
          ),
        ).toBe(100);
        expect(
          sample(text, 'gateway_capture_dropped_total{reason="error"}'),
        ).toBe(100);
      } finally {
        await redis.restart();
      }
      await until(async () => {
        await post(body('back'));
        await settled();
        return (await entries()).length > 0;
      }, 10_000);
    });

    it('feeds the drift example: the share of POSITIVE answers per version and hour (demo/capture-consumer.mjs)', async () => {
      const negative = await new Upstream((req, res) =>
        json(res, 200, { sentiment: 'NEGATIVE', confidence: 0.9 }),
      ).start();
      const dir = mkdtempSync(join(tmpdir(), 'capture-routes-'));
      try {
        const routes = join(dir, 'routes.yaml');
        writeFileSync(
          routes,
          `models:
  sentiment:
    versions:
      - {name: v1, urls: ["${upstream.url}"], weight: 1}
      - {name: v2, urls: ["${negative.url}"], weight: 1}
`,
        );
        await start({ BACKEND_URL: undefined, ROUTES_FILE: routes });
        for (let i = 0; i < 10; i++)
          await post(body(`review ${i}`), {
            'x-model-version': i < 6 ? 'v1' : 'v2',
          });
        // An answer that is not a prediction (the model's 400) is not counted.
        await post('not json', { 'x-model-version': 'v1' });
        await settled();
        const { stdout } = await promisify(execFile)(process.execPath, [
          'demo/capture-consumer.mjs',
          '--redis',
          redis.url,
          '--stream',
          KEY,
          '--once',
        ]);
        const summary = JSON.parse(stdout) as Record<
          string,
          Record<string, unknown>
        >;
        const hours = Object.keys(summary);
        expect(hours).toHaveLength(1);
        expect(hours[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:00Z$/);
        expect(summary[hours[0]]).toEqual({
          v1: { positive: 6, answers: 6, share: 1 },
          v2: { positive: 0, answers: 4, share: 0 },
        });
      } finally {
        await negative.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
