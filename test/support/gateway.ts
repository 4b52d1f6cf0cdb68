import request from 'supertest';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { createApp } from '../../src/app.factory.js';
import { Upstream } from './upstream.js';

export interface RunningGateway {
  app: NestFastifyApplication;
  url: string;
  close(): Promise<void>;
}

/** Defaults that keep tests quiet and fast; each test overrides what it exercises. */
const TEST_ENV: Record<string, string> = {
  LOG_LEVEL: 'silent',
  HEALTH_CHECK_INTERVAL_MS: '60000',
};

/**
 * Starts the real application (same factory as main.ts) on 127.0.0.1 with an
 * ephemeral port; `env` is applied to process.env only while it boots.
 */
export async function startGateway(
  env: Record<string, string | undefined>,
): Promise<RunningGateway> {
  const saved = { ...process.env };
  Object.assign(process.env, TEST_ENV);
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
  let app: NestFastifyApplication;
  try {
    app = await createApp();
    await app.listen(0, '127.0.0.1');
  } finally {
    process.env = saved;
  }
  const { port } = app.getHttpServer().address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}`, close: () => app.close() };
}

/** The gateway's Prometheus text. */
export async function metricsText(gw: RunningGateway): Promise<string> {
  return (await request(gw.url).get('/metrics').expect(200)).text;
}

/** An upstream and the gateway in front of it, as `withGateway` keeps them. */
export interface GatewayStack {
  readonly upstream: Upstream;
  readonly gw: RunningGateway;
}

/**
 * The usual setup of a suite: an `Upstream` (the sentiment handler) and a
 * gateway with `BACKEND_URL` set to it plus `env`, started before all tests
 * of the enclosing describe (or afresh before each with `per: 'test'`) and
 * closed after them. Call it in the describe's body; read `upstream` and `gw`
 * in hooks and tests.
 */
export function withGateway(
  env: Record<string, string | undefined>,
  { per = 'suite' }: { per?: 'suite' | 'test' } = {},
): GatewayStack {
  let upstream: Upstream | undefined;
  let gw: RunningGateway | undefined;
  const [before, after] =
    per === 'test' ? [beforeEach, afterEach] : [beforeAll, afterAll];
  before(async () => {
    upstream = await new Upstream().start();
    gw = await startGateway({ BACKEND_URL: upstream.url, ...env });
  });
  after(async () => {
    await gw?.close();
    await upstream?.stop();
    gw = upstream = undefined;
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined)
      throw new Error('withGateway: read outside the tests it runs for');
    return value;
  };
  return {
    get upstream() {
      return started(upstream);
    },
    get gw() {
      return started(gw);
    },
  };
}
