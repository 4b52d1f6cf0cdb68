import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { BackendPoolService } from '../src/proxy/backend-pool.service.js';
import {
  metricsText,
  startGateway,
  type RunningGateway,
} from './support/gateway.js';
import { sample } from './support/raw.js';
import { json, Upstream } from './support/upstream.js';
import { until } from './support/wait.js';

const digest = (key: string) =>
  `sha256:${createHash('sha256').update(key).digest('hex')}`;

const TENANTS = `
tenants:
  checkout: { apiKeys: ["${digest('critical-key')}"], priority: critical }
  web: { apiKeys: ["${digest('standard-key')}"], priority: standard }
  backfill: { apiKeys: ["${digest('sheddable-key')}"], priority: sheddable }
`;

interface Answer {
  status: number;
  body: Record<string, unknown>;
  ms: number;
}

describe('Priority classes in admission control (e2e)', () => {
  const held: (() => void)[] = [];
  let upstream: Upstream;
  let gw: RunningGateway;

  beforeAll(async () => {
    // Answers only when the test lets it: the one slot stays busy meanwhile.
    upstream = await new Upstream((req, res, body) => {
      if (req.url === '/healthz') return json(res, 200, { status: 'ok' });
      held.push(() => json(res, 200, JSON.parse(body.toString()) as object));
    }).start();
    const file = join(mkdtempSync(join(tmpdir(), 'tenants-')), 'tenants.yaml');
    writeFileSync(file, TENANTS);
    gw = await startGateway({
      BACKEND_URL: upstream.url,
      TENANTS_FILE: file,
      BACKEND_MAX_CONCURRENCY: '1',
      QUEUE_MAX: '2',
      QUEUE_TIMEOUT_MS: '10000',
      RETRY_ATTEMPTS: '0',
    });
  });

  afterAll(async () => {
    for (const answer of held.splice(0)) answer();
    await gw?.close();
    await upstream?.stop();
  });

  function post(key: string, text: string): Promise<Answer> {
    const started = performance.now();
    return request(gw.url)
      .post('/predict')
      .set('content-type', 'application/json')
      .set('x-api-key', key)
      .send(JSON.stringify({ request: { text } }))
      .then((res) => ({
        status: res.status,
        body: res.body as Record<string, unknown>,
        ms: performance.now() - started,
      }));
  }

  it('serves critical first; a critical request displaces the newest sheddable one from a full queue, which gets 503 at once', async () => {
    const admission = gw.app.get(BackendPoolService).implicit!.admission!;
    const busy = post('standard-key', 'busy');
    await until(() => held.length === 1, 5000, 2);
    const sheddable = post('sheddable-key', 'sheddable');
    await until(() => admission.queued === 1, 5000, 2);
    const standard = post('standard-key', 'standard');
    await until(() => admission.queued === 2, 5000, 2);
    // The queue is full: the critical request takes the sheddable one's place.
    const critical = post('critical-key', 'critical');
    const displaced = await sheddable;
    expect(displaced.status).toBe(503);
    expect(displaced.body).toMatchObject({
      code: 'overloaded',
      message:
        "overloaded: the queue is full (2) and a request of a higher class took this one's place",
    });
    await until(() => admission.queued === 2, 5000, 2);
    // Sheddable requests are refused at once from half full.
    const refused = await post('sheddable-key', 'late');
    expect(refused.status).toBe(503);
    expect(refused.body.message).toBe(
      'overloaded: the queue is half full (2 of 2): sheddable requests are refused',
    );
    expect(refused.ms).toBeLessThan(200);
    // A standard request finds no lower class to displace: refused.
    const full = await post('standard-key', 'full');
    expect(full.body.message).toBe('overloaded: the queue is full (2)');
    // The slot frees: critical goes before the standard request queued first.
    for (let i = 0; i < 3; i++) {
      await until(() => held.length > 0, 5000, 2);
      held.shift()!();
    }
    const answers = await Promise.all([busy, critical, standard]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(
      upstream.received.map(
        (r) =>
          (JSON.parse(r.body.toString()) as { request: { text: string } })
            .request.text,
      ),
    ).toEqual(['busy', 'critical', 'standard']);
    const metrics = await metricsText(gw);
    const shed = (reason: string, priority: string) =>
      sample(
        metrics,
        `gateway_shed_total{reason="${reason}",priority="${priority}"}`,
      );
    expect(shed('displaced', 'sheddable')).toBe(1);
    expect(shed('queue_full', 'sheddable')).toBe(1);
    expect(shed('queue_full', 'standard')).toBe(1);
  });
});
