import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { createInterface } from 'node:readline';
import {
  gatewayShedP99,
  openLoop,
  percentile,
  summarize,
} from '../bench/open-loop.mjs';
import { BackendPoolService } from '../src/proxy/backend-pool.service.js';
import { startGateway, type RunningGateway } from './support/gateway.js';
import { startModelServer, type ModelServer } from './support/model-server.js';
import { freePort } from './support/net.js';
import { json, Upstream } from './support/upstream.js';
import { until } from './support/wait.js';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  ms: number;
}

/** One POST /predict with its own connection; resolves with status 0 when aborted. */
function post(base: string, id: string, signal?: AbortSignal): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = httpRequest(
      `${base}/predict`,
      {
        method: 'POST',
        signal,
        headers: { 'content-type': 'application/json', 'x-request-id': id },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
            ms: performance.now() - started,
          });
        });
      },
    );
    req.once('error', () =>
      resolve({ status: 0, headers: {}, body: {}, ms: 0 }),
    );
    req.end('{"request":{"text":"hi"}}');
  });
}

async function metric(base: string, name: string): Promise<number[]> {
  const res = await fetch(`${base}/metrics`);
  const text = await res.text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(name))
    .map((line) => Number(line.split(' ').at(-1)));
}

describe('Overload protection: limits, queue, shedding (e2e)', () => {
  let model: ModelServer | undefined;
  let gw: RunningGateway | undefined;

  async function setup(
    server: { slots: number; serviceMs: number },
    env: Record<string, string>,
  ) {
    model = await startModelServer(server);
    gw = await startGateway({ BACKEND_URL: model.url, ...env });
    return {
      gw,
      model,
      admission: gw.app.get(BackendPoolService).implicit!.admission!,
    };
  }

  afterEach(async () => {
    await gw?.close();
    await model?.close();
    gw = model = undefined;
  });

  it('a backend never sees more than its limit; the rest wait and are all served', async () => {
    // 100 ms per answer: all 30 arrive while the first 3 are served, even on
    // a loaded machine, so 27 wait.
    const { gw, model } = await setup(
      { slots: 16, serviceMs: 100 },
      { BACKEND_MAX_CONCURRENCY: '3' },
    );
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => post(gw.url, `r${i}`)),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(30).fill(200));
    expect(model.stats.maxOutstanding).toBe(3);
    expect(model.stats.served).toBe(30);
    expect(await metric(gw.url, 'gateway_backend_concurrency_limit{')).toEqual([
      3,
    ]);
    expect(await metric(gw.url, 'gateway_queue_depth{pool="default"}')).toEqual(
      [0],
    );
    const waited = await metric(gw.url, 'gateway_queue_wait_seconds_count');
    expect(waited[0]).toBeGreaterThanOrEqual(27);
  });

  it('drains the queue in arrival order', async () => {
    const { gw, model, admission } = await setup(
      { slots: 1, serviceMs: 60 },
      { BACKEND_MAX_CONCURRENCY: '1' },
    );
    const answers: Promise<Answer>[] = [post(gw.url, 'q0')];
    await until(() => model.stats.received === 1, 5000, 2);
    for (let i = 1; i < 8; i++) {
      answers.push(post(gw.url, `q${i}`));
      // Queued or already dispatched: the next one arrives after it.
      await until(
        () => admission.queued + model.stats.received === i + 1,
        5000,
        1,
      );
    }
    expect(model.stats.maxOutstanding).toBe(1);
    expect((await Promise.all(answers)).map((a) => a.status)).toEqual(
      Array(8).fill(200),
    );
    expect(model.stats.order).toEqual(
      Array.from({ length: 8 }, (_, i) => `q${i}`),
    );
    const waited = await metric(gw.url, 'gateway_queue_wait_seconds_count');
    expect(waited[0]).toBeGreaterThanOrEqual(5); // most of them did queue
  });

  it('refuses at once with 503 overloaded + Retry-After when the queue is full', async () => {
    const { gw, model, admission } = await setup(
      { slots: 1, serviceMs: 400 },
      { BACKEND_MAX_CONCURRENCY: '1', QUEUE_MAX: '2' },
    );
    const first = [post(gw.url, 'a'), post(gw.url, 'b'), post(gw.url, 'c')];
    await until(() => admission.queued === 2, 5000, 2);
    const refused = await post(gw.url, 'full-1');
    console.log(`queue_full refusal: ${refused.ms.toFixed(1)} ms`);
    expect(refused.status).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.headers['x-request-id']).toBe('full-1');
    expect(refused.body).toEqual({
      statusCode: 503,
      error: 'Service Unavailable',
      code: 'overloaded',
      message: 'overloaded: the queue is full (2)',
      request_id: 'full-1',
    });
    expect(refused.ms).toBeLessThan(100); // the others wait 400-1200 ms
    expect((await Promise.all(first)).map((a) => a.status)).toEqual([
      200, 200, 200,
    ]);
    expect(model.stats.received).toBe(3);
    expect(
      await metric(
        gw.url,
        'gateway_shed_total{reason="queue_full",priority="standard"}',
      ),
    ).toEqual([1]);
  });

  it('refuses with 503 overloaded after QUEUE_TIMEOUT_MS in the queue, before the backend sees it', async () => {
    const { gw, model, admission } = await setup(
      { slots: 1, serviceMs: 600 },
      { BACKEND_MAX_CONCURRENCY: '1', QUEUE_TIMEOUT_MS: '100' },
    );
    const busy = post(gw.url, 'busy');
    await until(() => model.stats.received === 1, 5000, 2);
    const refused = await post(gw.url, 'late');
    console.log(`queue_timeout refusal: ${refused.ms.toFixed(1)} ms`);
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('overloaded');
    expect(refused.body.message).toBe(
      'overloaded: no backend was free within 100 ms',
    );
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.ms).toBeGreaterThanOrEqual(95);
    expect(refused.ms).toBeLessThan(400);
    expect(admission.queued).toBe(0);
    expect((await busy).status).toBe(200);
    expect(model.stats.received).toBe(1);
    expect(
      await metric(
        gw.url,
        'gateway_shed_total{reason="queue_timeout",priority="standard"}',
      ),
    ).toEqual([1]);
  });

  it('refuses at once what cannot finish within BACKEND_TIMEOUT_MS given the recent latency', async () => {
    const { gw, model } = await setup(
      { slots: 1, serviceMs: 150 },
      { BACKEND_MAX_CONCURRENCY: '1', BACKEND_TIMEOUT_MS: '250' },
    );
    expect((await post(gw.url, 'learn')).status).toBe(200); // latency ~150 ms
    const busy = post(gw.url, 'busy');
    await until(() => model.stats.received === 2, 5000, 2);
    // Waiting ~150 ms for the slot + ~150 ms of work > 250 ms.
    const refused = await post(gw.url, 'hopeless');
    console.log(`deadline refusal: ${refused.ms.toFixed(1)} ms`);
    expect(refused.status).toBe(503);
    expect(refused.body.message).toBe(
      'overloaded: no backend can answer within 250 ms',
    );
    expect(refused.ms).toBeLessThan(100);
    expect((await busy).status).toBe(200);
    expect(
      await metric(
        gw.url,
        'gateway_shed_total{reason="deadline",priority="standard"}',
      ),
    ).toEqual([1]);
  });

  it('a client that leaves while queued leaves the queue; its slot is never taken', async () => {
    const { gw, model, admission } = await setup(
      { slots: 1, serviceMs: 200 },
      { BACKEND_MAX_CONCURRENCY: '1' },
    );
    const busy = post(gw.url, 'busy');
    await until(() => model.stats.received === 1, 5000, 2);
    const leaving = new AbortController();
    const gone = post(gw.url, 'gone', leaving.signal);
    await until(() => admission.queued === 1, 5000, 2);
    leaving.abort();
    await until(() => admission.queued === 0, 5000, 2);
    expect((await gone).status).toBe(0);
    expect((await busy).status).toBe(200);
    expect((await post(gw.url, 'next')).status).toBe(200);
    expect(model.stats.order).toEqual(['busy', 'next']);
    expect(await metric(gw.url, 'gateway_queue_depth')).toEqual([0]);
  });

  it('retries and failover take a slot like any request', async () => {
    // Two backends, limit 1 each: one answers 503 at once (retried on the other), the other is slow.
    const failing = await new Upstream((req, res) =>
      req.url === '/healthz'
        ? json(res, 200, { status: 'ok' })
        : json(res, 503, { error: 'busy' }),
    ).start();
    model = await startModelServer({ slots: 4, serviceMs: 100 });
    try {
      gw = await startGateway({
        BACKEND_URL: undefined,
        BACKEND_URLS: `${failing.url},${model.url}`,
        BACKEND_MAX_CONCURRENCY: '1',
        // Six requests share one 100 ms slot: on a loaded machine the last
        // retry waits past the default 1 s, which this test is not about.
        QUEUE_TIMEOUT_MS: '10000',
        RETRY_BUDGET_PERCENT: '100',
        LB_POLICY: 'round_robin',
      });
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) => post(gw!.url, `f${i}`)),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
      expect(failing.received.length).toBeGreaterThan(0); // some went there first and were retried
      expect(model.stats.maxOutstanding).toBe(1);
    } finally {
      await failing.stop();
    }
  });
});

/** The built gateway (dist/main.js) in its own process, so load, gateway and model use separate cores. */
async function spawnQuietGateway(env: Record<string, string>) {
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/main.js'], {
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      GATEWAY_PORT: String(port),
      LOG_LEVEL: 'error',
      HEALTH_CHECK_INTERVAL_MS: '60000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const closed = once(child, 'close');
  // Its log (every 5xx at LOG_LEVEL=error) from `markLog()` on.
  let log = '';
  let keep = false;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    if (keep) log += text;
  });
  const url = `http://127.0.0.1:${port}`;
  await until(
    () =>
      fetch(`${url}/health/live`).then(
        (r) => r.ok,
        () => false,
      ),
    15_000,
    50,
  );
  return {
    url,
    child,
    markLog: () => (keep = true),
    /** The log since markLog(), once the process has stopped (SIGTERM: pino flushes on exit). */
    logAfterStop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await closed;
      return log;
    },
  };
}

async function spawnModel(slots: number, serviceMs: number) {
  const child = spawn(
    process.execPath,
    [
      'bench/model-server.mjs',
      '--slots',
      String(slots),
      '--service-ms',
      String(serviceMs),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [line] = (await once(
    createInterface({ input: child.stdout }),
    'line',
  )) as [string];
  return { url: `http://127.0.0.1:${line.split(' ')[1]}`, child };
}

async function stopChild(child: ChildProcess) {
  if (child.exitCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}

/** Scheduling delay of this process while `during` runs: how late 5 ms timers fire (p99, ms). */
async function schedulingDelay<T>(during: () => Promise<T>) {
  const lags: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - last - 5));
    last = now;
  }, 5);
  try {
    const result = await during();
    return { result, lagP99: percentile(lags, 99) };
  } finally {
    clearInterval(timer);
  }
}

// Opt-in (OVERLOAD_E2E=1): ~20 s of timed load, and its latency bounds only
// hold on a machine that is not saturated by other jobs.
describe.skipIf(!process.env.OVERLOAD_E2E)(
  'Overload protection: adaptive limit under 4x offered load (e2e)',
  () => {
    // The server (4 slots) at a 100 ms service time rather than 20 ms:
    // the same 4x overload at a fifth of the request rate (160 req/s), so a
    // shared 2-core machine measures the gateway's choices, not its CPU queue.
    // Latency bounds get the scheduling delay measured during the run on top.
    const SLOTS = 4;
    const SERVICE_MS = 100;
    const RPS = 4 * ((SLOTS * 1000) / SERVICE_MS);
    const DEADLINE_MS = 3 * SERVICE_MS;
    const WARMUP_MS = 4000;
    const MEASURE_MS = 3000;
    const MAX_IDLE_DELAY_MS = 10;
    let model: { url: string; child: ChildProcess };

    beforeAll(async () => {
      model = await spawnModel(SLOTS, SERVICE_MS);
    });
    afterAll(async () => {
      await stopChild(model.child);
    });

    async function run(limit: string) {
      const gw = await spawnQuietGateway({
        BACKEND_URL: model.url,
        BACKEND_MAX_CONCURRENCY: limit,
        BACKEND_TIMEOUT_MS: String(DEADLINE_MS),
        RETRY_ATTEMPTS: '0',
      });
      try {
        await openLoop({
          url: `${gw.url}/predict`,
          rps: RPS,
          durationMs: WARMUP_MS,
        });
        const limits: number[] = [];
        gw.markLog();
        const poll = setInterval(() => {
          void metric(gw.url, 'gateway_backend_concurrency_limit{').then(
            ([value]) => limits.push(value),
            () => undefined,
          );
        }, 250);
        const { result, lagP99 } = await schedulingDelay(() =>
          openLoop({
            url: `${gw.url}/predict`,
            rps: RPS,
            durationMs: MEASURE_MS,
          }),
        );
        clearInterval(poll);
        const summary = summarize(result, {
          durationMs: MEASURE_MS,
          deadlineMs: DEADLINE_MS,
        });
        const gatewayShedMs = gatewayShedP99(await gw.logAfterStop());
        console.log(
          `limit=${limit}`,
          JSON.stringify({
            ...summary,
            gatewayShedMs,
            limits: limits.join(','),
            lagP99,
          }),
        );
        return { summary, limits, lagP99, gatewayShedMs };
      } finally {
        await stopChild(gw.child);
      }
    }

    it('auto settles within 2x of the server slots, keeps >= 90 % of the best fixed goodput, serves fast and sheds fast', async (ctx) => {
      // Timing claims mean nothing on a machine that delays an idle process's
      // timers by tens of ms (other jobs saturating the cores): say so, skip.
      const idle = await schedulingDelay(
        () => new Promise((resolve) => setTimeout(resolve, 1000)),
      );
      console.log(`idle scheduling delay p99: ${idle.lagP99.toFixed(1)} ms`);
      if (idle.lagP99 > MAX_IDLE_DELAY_MS) {
        ctx.skip(
          `machine too busy for a latency test (timers ${idle.lagP99.toFixed(0)} ms late)`,
        );
      }
      const fixed = await run(String(SLOTS));
      const auto = await run('auto');
      const allowance = Math.max(fixed.lagP99, auto.lagP99);
      const settled = auto.limits.filter((l) => l <= 2 * SLOTS);
      expect(settled.length / auto.limits.length).toBeGreaterThanOrEqual(0.9);
      expect(auto.summary.goodputRps).toBeGreaterThanOrEqual(
        0.9 * fixed.summary.goodputRps,
      );
      expect(auto.summary.p99ServedMs).toBeLessThanOrEqual(
        3 * SERVICE_MS + allowance,
      );
      expect(auto.summary.shed).toBeGreaterThan(0);
      expect(auto.summary.shedWithRetryAfter).toBe(auto.summary.shed);
      // Shed fast: the gateway's own time for a 503 (its access log). What the
      // load generator sees adds its own event loop and the kernel's queues on
      // the same cores (printed above; 8-19 ms p99 on a shared 2-vCPU machine
      // whose median is under 1 ms).
      expect(auto.gatewayShedMs).toBeLessThan(5);
    }, 60_000);
  },
);
