import request from 'supertest';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/app.factory.js';

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
