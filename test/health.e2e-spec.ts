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

  it('GET /health is 200 with the Go gateway shape when the backend answers its probe', async () => {
    gw = await startGateway({ BACKEND_URL: upstream.url });
    const res = await request(gw.url).get('/health').expect(200);
    const backend = {
      url: upstream.url,
      state: 'healthy',
      last_check: expect.any(String),
      last_status: 200,
      last_error: null,
      consecutive_failures: 0,
      in_flight: 0,
    };
    const details = {
      backends: { status: 'up', healthy: 1, total: 1, backends: [backend] },
    };
    expect(res.body).toEqual({
      status: 'ok',
      service: 'api-gateway',
      backend: 'ok',
      backend_status: 200,
      backends: [backend],
      info: details,
      error: {},
      details,
    });
    expect(upstream.probes.map((p) => `${p.method} ${p.url}`)).toContain(
      'GET /healthz',
    );
  });

  it('GET /health is 503 with backend "unreachable" and the error when the backend is down', async () => {
    await upstream.stop();
    gw = await startGateway({ BACKEND_URL: upstream.url });
    const res = await request(gw.url).get('/health').expect(503);
    expect(res.body).toMatchObject({
      status: 'error',
      service: 'api-gateway',
      backend: 'unreachable',
      backend_status: null,
      backend_error: 'ECONNREFUSED',
      error: { backends: { status: 'down' } },
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
    expect(res.body).toMatchObject({
      backend: 'unhealthy',
      backend_status: 405,
      backend_error: 'health check answered 405',
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
    expect(res.body.error.backends.status).toBe('down');
  });
});
