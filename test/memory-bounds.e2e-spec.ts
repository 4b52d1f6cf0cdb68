import request from 'supertest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { expectGatewayError } from './support/expect.js';
import { metricsText, startGateway } from './support/gateway.js';
import { sample } from './support/raw.js';
import { json, Upstream } from './support/upstream.js';
import { until } from './support/wait.js';

/** What bounds the memory requests can take, whatever the concurrency. */
describe('Memory bounds (e2e)', () => {
  it('MAX_BUFFERED_BODY_BYTES: bodies held at once are bounded; one over it gets 503 overloaded with Retry-After, and the budget comes back', async () => {
    const held: (() => void)[] = [];
    const upstream = await new Upstream(
      (req: IncomingMessage, res: ServerResponse) => {
        if (req.url === '/healthz') return json(res, 200, {});
        held.push(() => json(res, 200, { ok: true }));
      },
    ).start();
    const gw = await startGateway({
      BACKEND_URL: upstream.url,
      MAX_BUFFERED_BODY_BYTES: String(1024 * 1024),
      RETRY_ATTEMPTS: '0',
    });
    try {
      const body = JSON.stringify({ request: { text: 'x'.repeat(600_000) } });
      const post = () =>
        request(gw.url)
          .post('/predict')
          .set('content-type', 'application/json')
          .send(body);
      // The first body is held while the backend thinks.
      const first = post().then((r) => r);
      await until(() => held.length === 1);
      const second = await post();
      expectGatewayError(
        {
          status: second.status,
          headers: second.headers,
          body: second.text,
        },
        503,
      );
      expect(second.body.code).toBe('overloaded');
      expect(second.headers['retry-after']).toBe('1');
      expect(upstream.received).toHaveLength(1);
      held.shift()!();
      expect((await first).status).toBe(200);
      // Its response closed: its bytes are back, the next body fits.
      const third = post().then((r) => r);
      await until(() => held.length === 1);
      held.shift()!();
      expect((await third).status).toBe(200);
      expect(
        sample(
          await metricsText(gw),
          'gateway_shed_total{reason="body_budget",priority=""}',
        ),
      ).toBe(1);
    } finally {
      for (const release of held) release();
      await gw.close();
      await upstream.stop();
    }
  });
});
