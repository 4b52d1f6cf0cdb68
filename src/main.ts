import { Logger } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.factory.js';
import { ConfigValidationError } from './config/env.js';
import { serverConfig } from './config/server.config.js';

async function bootstrap(): Promise<void> {
  const app = await createApp();
  const { port, host } = app.get<ConfigType<typeof serverConfig>>(
    serverConfig.KEY,
  );
  // Drain on SIGTERM/SIGINT (see ShutdownService), then exit 0.
  app.enableShutdownHooks(['SIGTERM', 'SIGINT'], { useProcessExit: true });
  await app.listen(port, host);
  const bound = (app.getHttpServer().address() as AddressInfo).port;
  new Logger('Bootstrap').log(
    { host, port: bound },
    `api-gateway listening on ${host}:${bound}`,
  );
}

bootstrap().catch((err: unknown) => {
  // A bad setting stops the process with one line naming it.
  console.error(err instanceof ConfigValidationError ? err.message : err);
  process.exit(1);
});
