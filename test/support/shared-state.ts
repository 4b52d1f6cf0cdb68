import request from 'supertest';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { spawnGateway, type GatewayProcess } from './process.js';
import { RedisServer } from './redis.js';
import { Upstream } from './upstream.js';

/** Helpers for the suites where several gateway processes share state through Redis. */

export const body = (text: string) => JSON.stringify({ request: { text } });

export interface Answer {
  status: number;
  ms: number;
  xCache?: string;
  text: string;
}

export async function post(
  gw: GatewayProcess,
  payload: string,
): Promise<Answer> {
  const started = performance.now();
  const res = await request(gw.url)
    .post('/predict')
    .set('content-type', 'application/json')
    .send(payload);
  return {
    status: res.status,
    ms: performance.now() - started,
    xCache: res.headers['x-cache'],
    text: res.text,
  };
}

/** `count` requests spread evenly over `ms`, alternating between the gateways: [gateway index, status]. */
function paced(gateways: GatewayProcess[], count: number, ms: number) {
  return Promise.all(
    Array.from(
      { length: count },
      (_, i) =>
        new Promise<[number, number]>((resolve, reject) =>
          setTimeout(
            () => {
              post(gateways[i % gateways.length], body('limited')).then(
                (a) => resolve([i % gateways.length, a.status]),
                reject,
              );
            },
            (i * ms) / count,
          ),
        ),
    ),
  );
}

export interface RedisHealth {
  status: string;
  target?: string;
  state?: string;
}

export async function health(gw: GatewayProcess) {
  const res = await request(gw.url).get('/health');
  const details = res.body as { details: { redis?: RedisHealth } };
  return { status: res.status, redis: details.details.redis };
}

/** RATE_LIMIT_* under which one bucket lets ~15 of limitRun's 40 requests through (10 + 5 x 0.975). */
export const SHARED_LIMIT = { RATE_LIMIT_RPS: '5', RATE_LIMIT_BURST: '10' };

/** 40 requests spread over one second, alternating between the gateways. */
export async function limitRun(gateways: GatewayProcess[]) {
  const answers = await paced(gateways, 40, 1000);
  const passed = answers.filter(([, status]) => status === 200);
  return {
    statuses: answers.map(([, status]) => status),
    passed: passed.length,
    perGateway: gateways.map(
      (_, g) => passed.filter(([which]) => which === g).length,
    ),
  };
}

/** limitRun under SHARED_LIMIT, asserting that the gateways held one bucket (and each let some through). */
export async function expectOneLimit(
  gateways: GatewayProcess[],
  label: string,
) {
  const { statuses, passed, perGateway } = await limitRun(gateways);
  console.info(
    `${label}, shared limit: ${passed}/40 let through (${perGateway.join(' + ')}); statuses: ${statuses.join(' ')}`,
  );
  expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
  expect(passed).toBeGreaterThanOrEqual(13);
  expect(passed).toBeLessThanOrEqual(16);
  expect(Math.min(...perGateway)).toBeGreaterThan(0);
}

/**
 * Two gateway processes on one Redis setting (`redisEnv`, read at start),
 * each `start` with a key prefix of its own; `stop` in afterEach.
 */
export function gatewayPair(
  upstream: () => Upstream,
  redisEnv: () => Record<string, string>,
) {
  let run = 0;
  let gateways: GatewayProcess[] = [];
  return {
    /** The key prefix of the last `start`. */
    get prefix() {
      return `t${run}:`;
    },
    async start(
      env: Record<string, string>,
      envB: Record<string, string> = {},
    ) {
      const common = {
        BACKEND_URL: upstream().url,
        ...redisEnv(),
        REDIS_KEY_PREFIX: `t${++run}:`,
        // A loaded CI machine can stall a process past the 50 ms default.
        REDIS_TIMEOUT_MS: '1000',
        RETRY_ATTEMPTS: '0',
        ...env,
      };
      gateways = await Promise.all([
        spawnGateway(common),
        spawnGateway({ ...common, ...envB }),
      ]);
      return gateways;
    },
    async stop() {
      await Promise.all(gateways.map((gw) => gw.stop()));
      gateways = [];
    },
  };
}

/**
 * The usual setup of a shared-state suite: a redis-server and an `Upstream`
 * started before all tests of the enclosing describe, stopped after them, and
 * a `gatewayPair` on them, stopped after each test. Call it in the describe's
 * body; read `redis`, `upstream` and `pair` in tests.
 */
export function redisGatewayPair() {
  const stack = {} as {
    redis: RedisServer;
    upstream: Upstream;
    pair: ReturnType<typeof gatewayPair>;
  };
  stack.pair = gatewayPair(
    () => stack.upstream,
    () => ({ REDIS_URL: stack.redis.url }),
  );
  beforeAll(async () => {
    stack.redis = await RedisServer.start();
    stack.upstream = await new Upstream().start();
  });
  afterEach(() => stack.pair.stop());
  afterAll(async () => {
    await stack.redis?.stop();
    await stack.upstream?.stop();
  });
  return stack;
}
