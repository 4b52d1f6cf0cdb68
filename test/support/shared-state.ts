import request from 'supertest';
import type { GatewayProcess } from './process.js';

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

/**
 * 40 requests spread over one second, alternating between two gateways (run
 * with RATE_LIMIT_RPS=5, RATE_LIMIT_BURST=10: one shared bucket lets ~15 through).
 */
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
