import request from 'supertest';
import { load } from './support/load.js';
import { json, Upstream, sentimentHandler } from './support/upstream.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { until } from './support/wait.js';

const INTERVAL = 200;

interface BackendView {
  url: string;
  state: string;
}

async function states(gw: RunningGateway): Promise<Record<string, string>> {
  const res = await request(gw.url).get('/health');
  const backends = res.body.backends as BackendView[];
  return Object.fromEntries(backends.map((b) => [b.url, b.state]));
}

function share(upstreams: Upstream[]): number[] {
  const total = upstreams.reduce((sum, u) => sum + u.received.length, 0);
  return upstreams.map((u) => u.received.length / total);
}

describe('Backend pool: health checks, ejection, failover, retries (e2e)', () => {
  let upstreams: Upstream[] = [];
  let gw: RunningGateway | undefined;

  async function pool(count: number, env: Record<string, string> = {}) {
    upstreams = await Promise.all(
      Array.from({ length: count }, () => new Upstream().start()),
    );
    gw = await startGateway({
      BACKEND_URL: undefined,
      BACKEND_URLS: upstreams.map((u) => u.url).join(','),
      HEALTH_CHECK_INTERVAL_MS: String(INTERVAL),
      HEALTH_CHECK_TIMEOUT_MS: '100',
      ...env,
    });
    return gw;
  }

  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    await Promise.all(upstreams.map((u) => u.stop()));
    upstreams = [];
  });

  it('loses no request when a backend dies mid-run, marks it down, and takes it back when it returns', async () => {
    const gw = await pool(3);
    const victim = upstreams[1];
    const port = victim.port;
    let killedAt = 0;
    let markedDown: Promise<number> | undefined;
    const run = await load(gw.url, {
      total: 3000,
      concurrency: 20,
      onProgress: async (done) => {
        if (done !== 1000) return;
        await victim.stop();
        killedAt = Date.now();
        markedDown = until(
          async () => (await states(gw))[victim.url] !== 'healthy',
          10 * INTERVAL,
        );
      },
    });
    expect(run.errors).toEqual([]);
    expect([...run.statuses.entries()]).toEqual([[200, 3000]]);
    // UNHEALTHY_THRESHOLD (3) failed probes, the 2nd and 3rd at the edge interval (INTERVAL / 2).
    const downMs = await markedDown!;
    expect(downMs).toBeLessThanOrEqual(2 * INTERVAL * 1.1 + 150);
    expect(killedAt).toBeGreaterThan(0);

    const before = victim.received.length;
    const restartedAt = Date.now();
    await victim.start(port);
    const readmitted = await until(
      async () => (await states(gw))[victim.url] === 'healthy',
      10 * INTERVAL,
    );
    expect(readmitted).toBeLessThanOrEqual(2 * INTERVAL * 1.1 + 100);
    const again = await load(gw.url, { total: 300, concurrency: 10 });
    expect(again.errors).toEqual([]);
    expect(victim.received.length - before).toBeGreaterThan(30);
    console.log(
      `kill-a-backend: sent ${run.sent + again.sent}, errors ${run.errors.length + again.errors.length}, ` +
        `marked down ${downMs} ms after the kill, readmitted ${readmitted} ms after restart ` +
        `(${Date.now() - restartedAt} ms incl. traffic), victim took ${victim.received.length - before} of 300 after return`,
    );
  });

  it.each([
    [
      'resets connections',
      (u: Upstream) =>
        (u.handler = (req, res) =>
          req.url === '/healthz'
            ? json(res, 200, {})
            : void req.socket.destroy()),
    ],
    [
      'answers 503',
      (u: Upstream) =>
        (u.handler = (req, res) =>
          json(res, req.url === '/healthz' ? 200 : 503, {
            error: 'overloaded',
          })),
    ],
    [
      'hangs past the try timeout',
      (u: Upstream) =>
        (u.handler = (req, res) =>
          req.url === '/healthz' ? json(res, 200, {}) : undefined),
    ],
  ])(
    'ejects a backend that %s while clients get correct answers from the others',
    async (_what, sicken) => {
      // A full retry budget: at the very start of a run its floor (3 per second) would bind.
      const gw = await pool(3, {
        EJECT_AFTER_FAILURES: '3',
        BACKEND_TRY_TIMEOUT_MS: '150',
        BACKEND_TIMEOUT_MS: '3000',
        RETRY_BUDGET_PERCENT: '100',
      });
      sicken(upstreams[2]);
      // Rounds of 200 until the sick backend is out (least-request sends a
      // hanging backend little traffic, so how many rounds that takes varies).
      for (let round = 1; ; round++) {
        const run = await load(gw.url, { total: 200, concurrency: 5 });
        expect(run.errors).toEqual([]);
        expect([...run.statuses.entries()]).toEqual([[200, 200]]);
        if ((await states(gw))[upstreams[2].url] === 'ejected') break;
        expect(round).toBeLessThan(5);
      }
      const metrics = (await request(gw.url).get('/metrics')).text;
      expect(metrics).toContain(
        `gateway_backend_ejections_total{backend="${upstreams[2].url}"} 1`,
      );
      expect(metrics).toContain(
        `gateway_backend_up{pool="default",backend="${upstreams[2].url}"} 0`,
      );
      expect(metrics).toMatch(
        /^gateway_retries_total\{endpoint="\/predict",reason="[a-z_]+"\} [1-9]/m,
      );
      // Ejected, it gets no traffic: the first failures only.
      expect(upstreams[2].received.length).toBeLessThanOrEqual(3 + 5 - 1);
    },
  );

  it('answers 503 with Retry-After, JSON and the request id when every backend is down, within the timeout', async () => {
    const gw = await pool(3, { BACKEND_TIMEOUT_MS: '2000' });
    await Promise.all(upstreams.map((u) => u.stop()));
    await until(
      async () => Object.values(await states(gw)).every((s) => s !== 'healthy'),
      10 * INTERVAL,
    );
    const started = Date.now();
    const res = await request(gw.url)
      .post('/predict')
      .set('x-request-id', 'all-down')
      .send('{}')
      .expect(503);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.headers['x-request-id']).toBe('all-down');
    expect(res.body).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      message: 'no backend is available (last error: ECONNREFUSED)',
      request_id: 'all-down',
    });
    expect(
      (await request(gw.url).get('/health').expect(503)).body,
    ).toMatchObject({ status: 'error', backend: 'unreachable' });
  });

  it('keeps retries within the budget when every backend fails (counted at the backends)', async () => {
    const gw = await pool(3, {
      RETRY_BUDGET_PERCENT: '20',
      RETRY_ATTEMPTS: '2',
      MAX_EJECTED_PERCENT: '0',
    });
    for (const u of upstreams)
      u.handler = (req, res) =>
        json(res, req.url === '/healthz' ? 200 : 503, {});
    const started = Date.now();
    const run = await load(gw.url, { total: 400, concurrency: 10 });
    const seconds = (Date.now() - started) / 1000;
    expect([...run.statuses.entries()]).toEqual([[503, 400]]);
    const received = upstreams.reduce((sum, u) => sum + u.received.length, 0);
    const retries = received - 400;
    // 20 % of requests, at least 3 per second (two one-second windows may overlap the run's edges).
    expect(retries).toBeLessThanOrEqual(
      Math.ceil(0.2 * 400 + 3 * (seconds + 2)),
    );
    expect(retries).toBeGreaterThan(0);
    const metrics = (await request(gw.url).get('/metrics')).text;
    expect(metrics).toMatch(/^gateway_retry_budget_exhausted_total [1-9]/m);
  });

  it('spreads load evenly over equal backends (±10 %)', async () => {
    const gw = await pool(3);
    await load(gw.url, { total: 1500, concurrency: 12 });
    for (const s of share(upstreams))
      expect(Math.abs(s - 1 / 3)).toBeLessThanOrEqual(0.1);
  });

  it('round robin is even too', async () => {
    const gw = await pool(3, { LB_POLICY: 'round_robin' });
    await load(gw.url, { total: 900, concurrency: 6 });
    for (const s of share(upstreams))
      expect(Math.abs(s - 1 / 3)).toBeLessThanOrEqual(0.1);
  });

  it('sends fewer requests to a slow backend (least outstanding requests)', async () => {
    const gw = await pool(3);
    upstreams[0].handler = (req, res, body) => {
      if (req.url === '/healthz') return sentimentHandler(req, res, body);
      setTimeout(() => void sentimentHandler(req, res, body), 30);
    };
    await load(gw.url, { total: 600, concurrency: 12 });
    const [slow] = share(upstreams);
    expect(slow).toBeLessThan(0.2);
  });
});
