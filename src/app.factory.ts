import type { ConfigType } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import {
  FastifyAdapter,
  type NestFastifyApplication,
} from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module.js';
import { genReqId } from './common/request-id.js';
import { serverConfig } from './config/server.config.js';
import {
  type FrameworkErrorHandler,
  installRequestPipeline,
} from './request-pipeline.js';

/**
 * Builds the application exactly as production runs it (main.ts and the e2e
 * tests share it): Fastify, pino logs, the request pipeline, server timeouts.
 */
export async function createApp(): Promise<NestFastifyApplication> {
  // Set below, once the application (and so the pipeline) exists.
  const late: { frameworkError?: FrameworkErrorHandler } = {};
  const adapter = new FastifyAdapter({
    genReqId,
    requestIdHeader: false,
    // No Express-style middleware anywhere (see LoggingModule): without
    // @fastify/middie every request skips its hook.
    skipMiddie: true,
    // Responses are ours to log (nestjs-pino); Fastify's own logger stays off.
    logger: false,
    routerOptions: { maxParamLength: 100 },
    frameworkErrors: (...args: Parameters<FrameworkErrorHandler>) =>
      late.frameworkError?.(...args),
    // While draining, a request on a connection still open is served (with
    // `Connection: close`, see ShutdownService), not refused with Fastify's
    // plain 503.
    return503OnClosing: false,
    http: {
      // Node checks header/request timeouts this often (its default, 30 s,
      // would let a slowloris connection outlive HEADERS_TIMEOUT_MS by that much).
      connectionsCheckingInterval: 1000,
      // A missing Host is refused by checkRequestHead, with the JSON error.
      requireHostHeader: false,
      // Repeated header lines arrive joined by ", " instead of all but the
      // first being dropped: two Host lines then fail the Host check, and
      // a backend sees every value the client sent.
      joinDuplicateHeaders: true,
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule,
    adapter,
    {
      // Silent until pino takes over below: a bad setting then prints just its one line.
      logger: false,
      bodyParser: false,
      abortOnError: false,
    },
  );
  app.useLogger(app.get(Logger));
  late.frameworkError = installRequestPipeline(app);
  const config = app.get<ConfigType<typeof serverConfig>>(serverConfig.KEY);
  const server = app.getHttpServer();
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  server.headersTimeout = config.headersTimeoutMs;
  server.requestTimeout = config.requestTimeoutMs;
  return app;
}
