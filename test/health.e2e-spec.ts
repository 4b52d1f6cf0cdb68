import request from 'supertest';
import { json, Upstream } from './support/upstream.js';
import { startGateway, type RunningGateway } from './support/gateway.js';

describe('Health (e2e)', () => {
  let upstream: Upstream;
  let gw: RunningGateway | undefined;

  beforeEach(async () => {
    upstream = await new Upstream().start();
  });

  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    await upstream.stop();
  });

  const report = (url: string, fields: object) => ({
    url,
    state: 'healthy',
    last_check: expect.any(String),
    last_status: 200,
    last_error: null,
    consecutive_failures: 0,
    in_flight: 0,
    ...fields,
  });

  it('GET /health is 200 with the Go gateway shape when the backend answers its probe', async () => {
    gw = await startGateway({ BACKEND_URL: upstream.url });
    const res = await request(gw.url).get('/health').expect(200);
    const summary = { backends: { status: 'up', healthy: 1, total: 1 } };
    expect(res.body).toEqual({
      status: 'ok',
      service: 'api-gateway',
      backend: 'ok',
      backend_status: 200,
      backends: [report(upstream.url, {})],
      info: summary,
      error: {},
      details: summary,
    });
    expect(upstream.probes.map((p) => `${p.method} ${p.url}`)).toContain(
      'GET /healthz',
    );
  });

  it('GET /health lists the backends once and summarises them for Terminus', async () => {
    const second = await new Upstream().start();
    const dead = await new Upstream().start();
    await dead.stop();
    try {
      gw = await startGateway({
        BACKEND_URL: undefined,
        BACKEND_URLS: [upstream.url, second.url, dead.url].join(','),
      });
      const res = await request(gw.url).get('/health').expect(200);
      const summary = { backends: { status: 'up', healthy: 2, total: 3 } };
      expect(res.body).toEqual({
        status: 'ok',
        service: 'api-gateway',
        backend: 'ok',
        backend_status: 200,
        backends: [
          report(upstream.url, {}),
          report(second.url, {}),
          report(dead.url, {
            state: 'unhealthy',
            last_status: null,
            last_error: 'ECONNREFUSED',
            consecutive_failures: 1,
          }),
        ],
        info: summary,
        error: {},
        details: summary,
      });
    } finally {
      await second.stop();
    }
  });

  it('GET /health is 503 with backend "unreachable" and the error when the backend is down', async () => {
    await upstream.stop();
    gw = await startGateway({ BACKEND_URL: upstream.url });
    const res = await request(gw.url).get('/health').expect(503);
    const summary = { backends: { status: 'down', healthy: 0, total: 1 } };
    expect(res.body).toEqual({
      status: 'error',
      service: 'api-gateway',
      backend: 'unreachable',
      backend_status: null,
      backend_error: 'ECONNREFUSED',
      backends: [
        report(upstream.url, {
          state: 'unhealthy',
          last_status: null,
          last_error: 'ECONNREFUSED',
          consecutive_failures: 1,
        }),
      ],
      info: {},
      error: summary,
      details: summary,
    });
  });

  it('GET /health is 503 "unhealthy" when the probe path answers non-2xx (e.g. BentoML POST-only /health)', async () => {
    upstream.handler = (req, res) =>
      json(res, req.url === '/health' && req.method !== 'POST' ? 405 : 200, {});
    gw = await startGateway({
      BACKEND_URL: upstream.url,
      BACKEND_HEALTH_PATH: '/health',
    });
    const res = await request(gw.url).get('/health').expect(503);
    const summary = { backends: { status: 'down', healthy: 0, total: 1 } };
    expect(res.body).toEqual({
      status: 'error',
      service: 'api-gateway',
      backend: 'unhealthy',
      backend_status: 405,
      backend_error: 'health check answered 405',
      backends: [
        report(upstream.url, {
          state: 'unhealthy',
          last_status: 405,
          last_error: 'health check answered 405',
          consecutive_failures: 1,
        }),
      ],
      info: {},
      error: summary,
      details: summary,
    });
  });

  it('liveness and readiness do not depend on the backend', async () => {
    await upstream.stop();
    gw = await startGateway({ BACKEND_URL: upstream.url });
    expect(
      (await request(gw.url).get('/health/live').expect(200)).body,
    ).toEqual({ status: 'ok' });
    const ready = await request(gw.url).get('/health/ready').expect(200);
    expect(ready.body).toEqual({
      status: 'ok',
      info: { app: { status: 'up' } },
      error: {},
      details: { app: { status: 'up' } },
    });
  });

  it('readiness requires a backend when READINESS_REQUIRES_BACKEND=true', async () => {
    await upstream.stop();
    gw = await startGateway({
      BACKEND_URL: upstream.url,
      READINESS_REQUIRES_BACKEND: 'true',
    });
    const res = await request(gw.url).get('/health/ready').expect(503);
    const backends = { status: 'down', healthy: 0, total: 1 };
    expect(res.body).toEqual({
      status: 'error',
      info: { app: { status: 'up' } },
      error: { backends },
      details: { app: { status: 'up' }, backends },
    });
  });
});
