import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import request from 'supertest';
import { TracingService } from '../src/tracing/tracing.service.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { load } from './support/load.js';
import { OtlpReceiver, type ReceivedSpan } from './support/otlp-receiver.js';
import { spawnGateway, type GatewayProcess } from './support/process.js';
import { json, sentimentHandler, Upstream } from './support/upstream.js';
import { until } from './support/wait.js';

const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;
const BODY = { request: { text: 'trace me' } };

function traceparent(flags: '01' | '00') {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, header: `00-${traceId}-${spanId}-${flags}` };
}

/** The OTEL_* settings of a gateway exporting OTLP/JSON to `receiver` at once. */
function tracingEnv(
  receiver: OtlpReceiver,
  extra: Record<string, string> = {},
) {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '20',
    ...extra,
  };
}

describe('Tracing: OpenTelemetry spans over OTLP/HTTP (e2e)', () => {
  let receiver: OtlpReceiver;
  let upstreams: Upstream[] = [];
  let gw: RunningGateway | undefined;
  let proc: GatewayProcess | undefined;
  let blackhole: Server | undefined;
  const held = new Set<Socket>();

  beforeEach(async () => {
    receiver = await new OtlpReceiver().start();
  });

  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    await proc?.stop();
    proc = undefined;
    await Promise.all(upstreams.map((u) => u.stop()));
    upstreams = [];
    await receiver.stop();
    const server = blackhole;
    blackhole = undefined;
    for (const socket of held) socket.destroy();
    held.clear();
    if (server) await new Promise((resolve) => server.close(resolve));
  });

  async function backends(count: number, handler = sentimentHandler) {
    upstreams = await Promise.all(
      Array.from({ length: count }, () => new Upstream(handler).start()),
    );
    return {
      BACKEND_URL: undefined,
      BACKEND_URLS: upstreams.map((u) => u.url).join(','),
    };
  }

  it('one retry: a server span continuing the client trace, a client span per attempt under it, and each backend gets its attempt as parent', async () => {
    let predictions = 0;
    // Whichever backend is tried first answers 503 (retried on the other one).
    const env = await backends(2, (req, res, body) => {
      if (req.url !== '/healthz' && predictions++ === 0)
        json(res, 503, { error: 'overloaded' });
      else void sentimentHandler(req, res, body);
    });
    gw = await startGateway({
      ...env,
      ...tracingEnv(receiver, {
        OTEL_TRACES_SAMPLER: 'parentbased_always_off',
      }),
    });
    const client = traceparent('01');

    const res = await request(gw.url)
      .post('/predict?model=a')
      .set('traceparent', client.header)
      .set('tracestate', 'vendor=1')
      .set('x-request-id', 'trace-retry-1')
      .send(BODY);
    expect(res.status).toBe(200);

    const spans = await receiver.trace(client.traceId, 3);
    expect(spans).toHaveLength(3);
    const server = spans.find((s) => s.kind === SERVER)!;
    const attempts = spans
      .filter((s) => s.kind === CLIENT)
      .sort(
        (a, b) =>
          Number(a.attributes['http.request.resend_count'] ?? 0) -
          Number(b.attributes['http.request.resend_count'] ?? 0),
      );
    expect(server).toMatchObject({
      name: 'POST /predict',
      parentSpanId: client.spanId,
      statusCode: 0,
      attributes: {
        'http.request.method': 'POST',
        'http.route': '/predict',
        'url.path': '/predict',
        'url.scheme': 'http',
        'server.address': '127.0.0.1',
        'http.response.status_code': 200,
        'http.request.body.size': JSON.stringify(BODY).length,
        'gateway.request_id': 'trace-retry-1',
      },
      resource: { 'service.name': 'api-gateway', 'service.version': '1.0.0' },
    });
    expect(attempts).toHaveLength(2);
    for (const attempt of attempts) {
      expect(attempt.parentSpanId).toBe(server.spanId);
      expect(attempt.name).toBe('POST');
    }
    const [first, second] = attempts;
    expect(first.attributes).toMatchObject({
      'http.response.status_code': 503,
      'error.type': '503',
    });
    expect(first.attributes).not.toHaveProperty('http.request.resend_count');
    expect(first.statusCode).toBe(ERROR);
    expect(second.attributes).toMatchObject({
      'http.response.status_code': 200,
      'http.request.resend_count': 1,
      'gateway.retry.reason': 'status',
    });
    expect(second.statusCode).toBe(0);

    // Each backend saw the client's trace id, its own attempt span as parent, the client's tracestate.
    const seen = upstreams.flatMap((u) => u.received);
    expect(seen).toHaveLength(2);
    const byAttempt = new Map(
      attempts.map((a) => [a.attributes['server.port'], a]),
    );
    for (const upstream of upstreams) {
      const received = upstream.received[0];
      const attempt = byAttempt.get(upstream.port)!;
      expect(received.headers.traceparent).toBe(
        `00-${client.traceId}-${attempt.spanId}-01`,
      );
      expect(received.headers.tracestate).toBe('vendor=1');
      expect(received.url).toBe('/predict?model=a');
    }
  });

  it('sampled out: nothing exported, the backend still gets the client trace id (unsampled)', async () => {
    const env = await backends(1);
    // The benchmark's "sampler 0": new traces never sampled, the client's decision honoured.
    gw = await startGateway({
      ...env,
      ...tracingEnv(receiver, { OTEL_TRACES_SAMPLER_ARG: '0' }),
    });
    const unsampledRoot = await request(gw.url).post('/predict').send(BODY);
    const unsampled = traceparent('00');
    const unsampledChild = await request(gw.url)
      .post('/predict')
      .set('traceparent', unsampled.header)
      .send(BODY);
    expect([unsampledRoot.status, unsampledChild.status]).toEqual([200, 200]);
    const [root, child] = upstreams[0].received.map(
      (r) => r.headers.traceparent as string,
    );
    expect(root).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(child).toMatch(
      new RegExp(`^00-${unsampled.traceId}-[0-9a-f]{16}-00$`),
    );
    expect(child).not.toContain(unsampled.spanId);

    // A sampled request after them: once its spans are in, the earlier ones would be too.
    const sampled = traceparent('01');
    await request(gw.url)
      .post('/predict')
      .set('traceparent', sampled.header)
      .send(BODY);
    await receiver.trace(sampled.traceId, 2);
    expect(receiver.spans.map((s) => s.traceId)).toEqual([
      sampled.traceId,
      sampled.traceId,
    ]);
  });

  it("the client's tracestate: kept W3C-valid on its own trace (at most 32 members, 512 characters), dropped on a new trace", async () => {
    const env = await backends(1);
    gw = await startGateway({
      ...env,
      ...tracingEnv(receiver, { OTEL_TRACES_SAMPLER_ARG: '0' }),
    });
    const members = Array.from({ length: 1000 }, (_, i) => `k${i}=v${i}`);
    const huge = members.join(',');
    const client = traceparent('00');
    for (const headers of [
      { traceparent: client.header, tracestate: huge },
      { traceparent: 'not-a-traceparent', tracestate: 'vendor=1' },
      { tracestate: 'vendor=1' },
      { traceparent: client.header, tracestate: 'vendor=1,Bad Key=x' },
    ])
      await request(gw.url)
        .post('/predict')
        .set(headers)
        .send(BODY)
        .expect(200);
    const sent = upstreams[0].received.map((r) => r.headers.tracestate);
    const kept = String(sent[0]).split(',');
    expect(kept.length).toBeLessThanOrEqual(32);
    expect(String(sent[0]).length).toBeLessThanOrEqual(512);
    expect(kept.every((m) => members.includes(m))).toBe(true);
    expect(sent.slice(1, 3)).toEqual([undefined, undefined]);
    expect(sent[3]).toBe('vendor=1');
  });

  it('logs that tracing is on at boot, with the endpoint and sampler (built process)', async () => {
    const env = await backends(1);
    proc = await spawnGateway({
      BACKEND_URL: env.BACKEND_URLS,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    });
    const line = await proc.waitForLine(
      (l) => l.msg === 'tracing on: OTLP/HTTP export',
    );
    expect(line).toMatchObject({
      context: 'Tracing',
      protocol: 'http/protobuf',
      sampler: 'parentbased_traceidratio',
    });
  });

  it('rate-limit decisions are events on the server span', async () => {
    const env = await backends(1);
    gw = await startGateway({
      ...env,
      RATE_LIMIT_RPS: '1',
      RATE_LIMIT_BURST: '1',
      ...tracingEnv(receiver, { OTEL_TRACES_SAMPLER: 'always_on' }),
    });
    const allowed = await request(gw.url).post('/predict').send(BODY);
    const limited = await request(gw.url).post('/predict').send(BODY);
    expect([allowed.status, limited.status]).toEqual([200, 429]);
    await receiver.waitFor(
      () => receiver.spans.filter((s) => s.kind === SERVER).length === 2,
    );
    const events = (status: number) =>
      receiver.spans.find(
        (s) =>
          s.kind === SERVER &&
          s.attributes['http.response.status_code'] === status,
      )!.events;
    expect(events(200)).toEqual([
      {
        name: 'gateway.rate_limit',
        attributes: {
          'gateway.rate_limit.decision': 'allowed',
          'gateway.rate_limit.remaining': 0,
        },
      },
    ]);
    expect(events(429)).toEqual([
      {
        name: 'gateway.rate_limit',
        attributes: {
          'gateway.rate_limit.decision': 'rejected',
          'gateway.rate_limit.limit': 1,
          'gateway.rate_limit.retry_after_s': expect.any(Number) as number,
        },
      },
    ]);
  });

  it('an OTLP endpoint that never answers neither fails nor slows requests: the queue is bounded, dropped spans are counted', async () => {
    // Accepts connections and never answers: every export hangs.
    blackhole = createServer((socket: Socket) => {
      held.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) =>
      blackhole!.listen(0, '127.0.0.1', resolve),
    );
    const port = (blackhole.address() as AddressInfo).port;
    const env = await backends(1);
    gw = await startGateway({
      ...env,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_TRACES_SAMPLER: 'always_on',
      OTEL_BSP_SCHEDULE_DELAY: '10',
      OTEL_BSP_MAX_QUEUE_SIZE: '8',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '4',
      OTEL_BSP_EXPORT_TIMEOUT: '1500',
      OTEL_EXPORTER_OTLP_TIMEOUT: '1500',
    });
    const durations: number[] = [];
    let last = Date.now();
    const run = await load(gw.url, {
      total: 200,
      concurrency: 4,
      onProgress: () => {
        const now = Date.now();
        durations.push(now - last);
        last = now;
      },
    });
    expect(run.errors).toEqual([]);
    expect([...run.statuses.entries()]).toEqual([[200, 200]]);
    // Each export hangs 1.5 s; no request waited for one.
    expect(Math.max(...durations)).toBeLessThan(1000);
    const metrics = await request(gw.url).get('/metrics');
    const dropped = Number(
      /gateway_tracing_spans_dropped_total\{reason="queue_full"\} (\d+)/.exec(
        metrics.text,
      )?.[1],
    );
    // 400 spans (a server and a client span per request) through a queue of 8.
    expect(dropped).toBeGreaterThan(300);
  });

  it('an OTLP endpoint that refuses connections: requests are served, failed exports are counted', async () => {
    const port = receiver.endpoint.split(':')[2];
    await receiver.stop();
    const env = await backends(1);
    gw = await startGateway({
      ...env,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_TRACES_SAMPLER: 'always_on',
      OTEL_BSP_SCHEDULE_DELAY: '10',
      // Read by the exporter itself: bounds its retries of a failed export.
      OTEL_EXPORTER_OTLP_TIMEOUT: '300',
    });
    const run = await load(gw.url, { total: 20, concurrency: 2 });
    expect([...run.statuses.entries()]).toEqual([[200, 20]]);
    await until(
      async () => {
        const metrics = await request(gw!.url).get('/metrics');
        return /gateway_tracing_spans_dropped_total\{reason="export_failed"\} [1-9]/.test(
          metrics.text,
        );
      },
      10_000,
      100,
    );
  });

  it('off (no endpoint): no trace is made and the client traceparent reaches the backend unchanged', async () => {
    const env = await backends(1);
    gw = await startGateway({ ...env, OTEL_EXPORTER_OTLP_ENDPOINT: undefined });
    expect(gw.app.get(TracingService)).toBe(TracingService.off);
    const client = traceparent('01');
    const res = await request(gw.url)
      .post('/predict')
      .set('traceparent', client.header)
      .send(BODY);
    expect(res.status).toBe(200);
    expect(upstreams[0].received[0].headers.traceparent).toBe(client.header);
  });

  it('the bundled gateway (dist/main.js) loads the SDK from node_modules, exports protobuf by default, and logs trace_id and span_id', async () => {
    const env = await backends(1);
    proc = await spawnGateway({
      BACKEND_URL: env.BACKEND_URLS,
      LOG_LEVEL: 'info',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_BSP_SCHEDULE_DELAY: '20',
      OTEL_SERVICE_NAME: 'edge-gateway',
    });
    const client = traceparent('01');
    const res = await request(proc.url)
      .post('/predict')
      .set('traceparent', client.header)
      .send(BODY);
    expect(res.status).toBe(200);
    const access = await proc.waitForLine((l) => l.msg === 'request completed');
    expect(access.trace_id).toBe(client.traceId);
    expect(access.span_id).toMatch(/^[0-9a-f]{16}$/);
    const fromBackend = upstreams[0].received[0].headers.traceparent as string;
    expect(fromBackend.split('-')[1]).toBe(client.traceId);

    // OTLP protobuf carries ids as raw bytes: both spans' ids are in the body.
    const traceBytes = Buffer.from(client.traceId, 'hex');
    const spanBytes = Buffer.from(access.span_id as string, 'hex');
    await receiver.waitFor(() =>
      receiver.exports.some((e) => e.body.includes(spanBytes)),
    );
    const exported = receiver.exports.find((e) => e.body.includes(spanBytes))!;
    expect(exported.contentType).toBe('application/x-protobuf');
    expect(exported.body.includes(traceBytes)).toBe(true);
    expect(exported.body.includes(Buffer.from('edge-gateway'))).toBe(true);
  });

  it('a sampled backend failure logs its trace_id and span_id', async () => {
    await backends(1);
    const port = upstreams[0].port;
    await upstreams[0].stop();
    proc = await spawnGateway({
      BACKEND_URL: `http://127.0.0.1:${port}`,
      LOG_LEVEL: 'info',
      ...tracingEnv(receiver, { OTEL_TRACES_SAMPLER: 'always_on' }),
    });
    const res = await request(proc.url).post('/predict').send(BODY);
    expect(res.status).toBe(502);
    const failure = await proc.waitForLine(
      (l) => l.msg === 'backend request failed',
    );
    const spans: ReceivedSpan[] = await receiver.trace(
      failure.trace_id as string,
      2,
    );
    const attempt = spans.find((s) => s.kind === CLIENT)!;
    expect(failure.span_id).toBe(attempt.spanId);
    expect(attempt.attributes['error.type']).toBe('connect');
    const access = await proc.waitForLine((l) => l.msg === 'request completed');
    expect(access.trace_id).toBe(failure.trace_id);
  });
});
