import request from 'supertest';
import { sample } from './support/raw.js';
import { hasRedisServer } from './support/redis.js';
import {
  type Answer,
  body,
  expectOneLimit,
  health,
  limitRun,
  post,
  redisGatewayPair,
  SHARED_LIMIT,
} from './support/shared-state.js';
import { until } from './support/wait.js';

describe.skipIf(!hasRedisServer)(
  'Cluster-wide state on Redis: two gateway processes, one redis-server (e2e)',
  () => {
    const stack = redisGatewayPair();
    const { pair } = stack;

    it('two gateways hold one limit: burst 10 + 5/s lets ~15 of 40 requests in one second through, over both', async () => {
      const [a, b] = await pair.start(SHARED_LIMIT);
      await expectOneLimit([a, b], 'one redis-server');
    });

    it('without REDIS_URL each gateway has its own bucket (the per-pod limit Redis fixes)', async () => {
      const [a, b] = await pair.start({ REDIS_URL: '', ...SHARED_LIMIT });
      const { passed } = await limitRun([a, b]);
      console.info(`per-pod limit: ${passed}/40 let through by two gateways`);
      expect(passed).toBeGreaterThan(20);
    });

    it('a cache entry filled through one gateway is a HIT through the other; the backend saw one request', async () => {
      const [a, b] = await pair.start({ CACHE_TTL_SECONDS: '60' });
      const text = `shared ${Date.now()}`;
      const before = stack.upstream.received.length;
      const miss = await post(a, body(text));
      const hit = await post(b, body(text));
      const pretty = await post(
        b,
        JSON.stringify(JSON.parse(body(text)), null, 2),
      );
      expect([miss.status, miss.xCache]).toEqual([200, 'MISS']);
      expect([hit.status, hit.xCache]).toEqual([200, 'HIT']);
      expect(hit.text).toBe(miss.text);
      expect(pretty.xCache).toBe('HIT');
      expect(stack.upstream.received.length - before).toBe(1);
      const logged = await b.waitForLine(
        (l) => l.route === '/predict' && l.cache === 'hit',
      );
      expect(logged).toMatchObject({ status: 200, cache: 'hit' });
    });

    it('Redis killed mid-run: every request answered (allow lets through, deny 503s, cache misses); restarted: shared again without a gateway restart', async () => {
      const limits = { RATE_LIMIT_RPS: '1000', CACHE_TTL_SECONDS: '60' };
      const [allow, deny] = await pair.start(
        { ...limits, RATE_LIMIT_ON_REDIS_ERROR: 'allow' },
        { RATE_LIMIT_ON_REDIS_ERROR: 'deny' },
      );
      expect((await post(allow, body('warm'))).xCache).toBe('MISS');
      expect((await post(deny, body('warm'))).xCache).toBe('HIT');
      expect((await health(allow)).redis?.status).toBe('up');

      await stack.redis.kill();
      const down: Answer[] = [];
      for (let i = 0; i < 20; i++)
        down.push(await post(allow, body(i % 2 ? 'warm' : `down ${i}`)));
      const denied: Answer[] = [];
      for (let i = 0; i < 20; i++) denied.push(await post(deny, body('warm')));
      console.info(
        `redis down: allow gateway ${down.filter((d) => d.status === 200).length}/20 answered 200 (max ${Math.max(...down.map((d) => d.ms)).toFixed(1)} ms), deny gateway ${denied.filter((d) => d.status === 503).length}/20 answered 503`,
      );
      expect(down.map((d) => [d.status, d.xCache])).toEqual(
        Array(20).fill([200, 'MISS']),
      );
      expect(denied.map((d) => d.status)).toEqual(Array(20).fill(503));
      expect(JSON.parse(denied[0].text)).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: expect.stringContaining('rate limiter unavailable') as string,
        request_id: expect.any(String) as string,
      });
      const healthDown = await health(allow);
      expect(healthDown.status).toBe(200);
      expect(healthDown.redis?.status).toBe('down');
      const metrics = (await request(allow.url).get('/metrics')).text;
      expect(sample(metrics, 'gateway_redis_up', NaN)).toBe(0);
      expect(
        sample(metrics, 'gateway_rate_limit_redis_fallback_total', NaN),
      ).toBeGreaterThanOrEqual(20);
      expect(metrics).toMatch(
        /gateway_redis_errors_total\{op="cache_get"\} \d+/,
      );
      expect(metrics).toContain(
        'gateway_cache_requests_total{endpoint="/predict",result="error"} 20',
      );

      await stack.redis.restart();
      const restarted = Date.now();
      await until(
        async () =>
          (await post(deny, body('back'))).status === 200 &&
          (await health(allow)).redis?.status === 'up',
        10_000,
        50, // reconnection is the gateway's own timer
      );
      const backMs = Date.now() - restarted;
      console.info(
        `redis restarted: both gateways shared again after ${backMs} ms`,
      );
      expect(backMs).toBeLessThan(5000);
      const again = `again ${Date.now()}`;
      expect((await post(allow, body(again))).xCache).toBe('MISS');
      expect((await post(deny, body(again))).xCache).toBe('HIT');
    });

    it('a hung Redis adds at most about REDIS_TIMEOUT_MS to a request', async () => {
      const [a] = await pair.start({
        RATE_LIMIT_RPS: '1000',
        CACHE_TTL_SECONDS: '60',
        REDIS_TIMEOUT_MS: '50',
      });
      await post(a, body('hung'));
      stack.redis.pause();
      try {
        const answers: Answer[] = [];
        for (let i = 0; i < 5; i++) answers.push(await post(a, body('hung')));
        const slowest = Math.max(...answers.map((x) => x.ms));
        console.info(
          `redis hung: 5/5 answered, slowest ${slowest.toFixed(1)} ms (limiter, cache lookup and store each bounded by 50 ms)`,
        );
        expect(answers.map((x) => [x.status, x.xCache])).toEqual(
          Array(5).fill([200, 'MISS']),
        );
        expect(slowest).toBeLessThan(1000);
      } finally {
        stack.redis.resume();
      }
    });
  },
);
