import request from 'supertest';
import { spawnSync } from 'node:child_process';
import { json, Upstream } from './support/upstream.js';
import { spawnGateway, type GatewayProcess } from './support/process.js';

// These run the built gateway (`npm test` builds first) as a real process:
// what it prints, how it starts and how it stops.
describe('Gateway process (e2e)', () => {
  let upstream: Upstream;
  let gw: GatewayProcess | undefined;

  beforeEach(async () => {
    upstream = await new Upstream().start();
  });

  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
    await upstream.stop();
  });

  it('stops at boot with one line naming a bad variable, its value and what is allowed', () => {
    const cases: [Record<string, string>, string][] = [
      [
        { GATEWAY_PORT: 'eighty' },
        'Invalid configuration: GATEWAY_PORT="eighty"; allowed: an integer from 0 to 65535',
      ],
      [
        { BACKEND_TIMEOUT_MS: '-5' },
        'Invalid configuration: BACKEND_TIMEOUT_MS="-5"; allowed: an integer from 1 to 3600000',
      ],
      [
        { LOG_LEVEL: 'chatty' },
        'Invalid configuration: LOG_LEVEL="chatty"; allowed: one of trace, debug, info, warn, error, fatal, silent',
      ],
      [
        { BACKEND_URL: 'sentiment:80' },
        'Invalid configuration: BACKEND_URL="sentiment:80"; allowed: an http:// or https:// URL without query or fragment',
      ],
    ];
    for (const [env, line] of cases) {
      const run = spawnSync(process.execPath, ['dist/main.js'], {
        env: { PATH: process.env.PATH, ...env },
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(run.status).toBe(1);
      expect(run.stderr.trim()).toBe(line);
      expect(run.stdout).toBe('');
    }
  });

  it('logs one JSON line per request with the request id on every line, redacting secrets and never the body', async () => {
    upstream.handler = (_req, res) => json(res, 200, { sentiment: 'POSITIVE' });
    gw = await spawnGateway({ BACKEND_URL: upstream.url, LOG_LEVEL: 'info' });
    await request(gw.url)
      .post('/predict')
      .set('x-request-id', 'log-me-1')
      .set('authorization', 'Bearer s3cr3t-token')
      .set('cookie', 'session=s3cr3t-cookie')
      .set('x-api-key', 's3cr3t-key')
      .send('{"request":{"text":"private words"}}')
      .expect(200);
    await request(gw.url).get('/health/live').expect(200);
    await request(gw.url).get('/metrics').expect(200);
    const line = await gw.waitForLine(
      (l) => l.request_id === 'log-me-1' && l.msg === 'request completed',
    );
    expect(line).toMatchObject({
      level: 'info',
      service: 'api-gateway',
      request_id: 'log-me-1',
      method: 'POST',
      path: '/predict',
      route: '/predict',
      status: 200,
      bytes: 24,
      backend: upstream.url,
      backend_status: 200,
    });
    expect(typeof line.duration_ms).toBe('number');
    expect(typeof line.backend_duration_ms).toBe('number');
    expect(typeof line.time).toBe('string');
    const all = JSON.stringify(gw.lines);
    for (const secret of [
      's3cr3t-token',
      's3cr3t-cookie',
      's3cr3t-key',
      'private words',
    ])
      expect(all).not.toContain(secret);
    // Probes and scrapes log at debug only: not at the default level.
    expect(
      gw.lines.some((l) => l.path === '/health/live' || l.path === '/metrics'),
    ).toBe(false);
    // Every line about this request carries its id.
    const aboutRequest = gw.lines.filter(
      (l) =>
        JSON.stringify(l).includes('/predict') &&
        !String(l.msg).startsWith('Mapped {'),
    );
    expect(aboutRequest.length).toBeGreaterThan(0);
    for (const l of aboutRequest) expect(l.request_id).toBe('log-me-1');
  });

  it('logs a cache hit like any answer: status, bytes and cache field', async () => {
    upstream.handler = (_req, res) => json(res, 200, { sentiment: 'POSITIVE' });
    gw = await spawnGateway({
      BACKEND_URL: upstream.url,
      LOG_LEVEL: 'info',
      CACHE_TTL_SECONDS: '60',
    });
    for (const id of ['fill-1', 'hit-1'])
      await request(gw.url)
        .post('/predict')
        .set('x-request-id', id)
        .send('{"request":{"text":"again"}}')
        .expect(200);
    const hit = await gw.waitForLine(
      (l) => l.request_id === 'hit-1' && l.msg === 'request completed',
    );
    expect(hit).toMatchObject({ status: 200, bytes: 24, cache: 'hit' });
    expect(hit).not.toHaveProperty('backend');
  });

  it('logs backend failures with request id, backend url and error', async () => {
    await upstream.stop();
    gw = await spawnGateway({ BACKEND_URL: upstream.url, RETRY_ATTEMPTS: '0' });
    await request(gw.url)
      .post('/predict')
      .set('x-request-id', 'fail-1')
      .send('{}')
      .expect(502);
    const failure = await gw.waitForLine(
      (l) => l.msg === 'backend request failed',
    );
    expect(failure).toMatchObject({
      level: 'warn',
      request_id: 'fail-1',
      backend_url: upstream.url,
      error: 'ECONNREFUSED',
    });
    const access = await gw.waitForLine(
      (l) => l.request_id === 'fail-1' && l.status === 502,
    );
    expect(access).toMatchObject({ level: 'error', backend_status: 'error' });
  });

  it('drains on SIGTERM: readiness fails at once, the request in flight is answered, then exit 0', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const inFlight = new Promise<void>((resolve) => (arrived = resolve));
    upstream.handler = async (req, res) => {
      if (req.url !== '/predict') return json(res, 200, {});
      arrived();
      await held;
      json(res, 200, { sentiment: 'NEGATIVE' });
    };
    gw = await spawnGateway({
      BACKEND_URL: upstream.url,
      SHUTDOWN_DELAY_MS: '300',
      SHUTDOWN_TIMEOUT_MS: '10000',
    });
    const pending = request(gw.url)
      .post('/predict')
      .send('{"request":{"text":"slow"}}');
    const answered = pending.then((res) => res);
    await inFlight;
    gw.child.kill('SIGTERM');
    await gw.waitForLine(
      (l) => typeof l.msg === 'string' && l.msg.startsWith('shutdown started'),
    );
    // During SHUTDOWN_DELAY_MS the listener still serves, and readiness says 503.
    await request(gw.url).get('/health/ready').expect(503);
    await request(gw.url).get('/health/live').expect(200);
    release();
    const res = await answered;
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ sentiment: 'NEGATIVE' });
    expect(await gw.exited).toBe(0);
    expect(gw.lines.some((l) => l.msg === 'shutdown complete')).toBe(true);
    // The bundle keeps the source's class names (esbuild.config.mjs), which
    // the log contexts and Nest's route lines show.
    const contexts = new Set(gw.lines.map((l) => l.context));
    for (const name of ['RoutesResolver', 'NestApplication', 'ShutdownService'])
      expect([name, contexts.has(name)]).toEqual([name, true]);
    expect(gw.lines.map((l) => l.msg)).toContain('PredictController {/}:');
  });

  it('cuts connections still open after SHUTDOWN_TIMEOUT_MS and exits 0', async () => {
    let arrived!: () => void;
    const inFlight = new Promise<void>((resolve) => (arrived = resolve));
    upstream.handler = (req, res) =>
      req.url === '/predict' ? arrived() : json(res, 200, {}); // /predict never answers
    gw = await spawnGateway({
      BACKEND_URL: upstream.url,
      BACKEND_TIMEOUT_MS: '60000',
      SHUTDOWN_TIMEOUT_MS: '500',
    });
    const pending = request(gw.url)
      .post('/predict')
      .send('{}')
      .then(
        (res) => res.status,
        (err: Error) => err.message,
      );
    await inFlight;
    gw.child.kill('SIGTERM');
    expect(await gw.exited).toBe(0);
    expect(await pending).toMatch(/socket hang up|ECONNRESET/);
  });
});
