import type { ConfigType } from '@nestjs/config';
import { NestFactory } from '@nestjs/core';
import {
  FastifyAdapter,
  type NestFastifyApplication,
} from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { AppModule } from './app.module.js';
import { accessGuards } from './auth/auth.module.js';
import { CacheService } from './cache/cache.service.js';
import { readRequestBody } from './common/request-body.js';
import { genReqId } from './common/request-id.js';
import { securityConfig } from './config/security.config.js';
import { serverConfig } from './config/server.config.js';

/**
 * Builds the application exactly as production runs it (main.ts and the e2e
 * tests share it): Fastify, pino logs, raw request bodies, server timeouts.
 */
export async function createApp(): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    genReqId,
    requestIdHeader: false,
    // No Express-style middleware anywhere (see LoggingModule): without
    // @fastify/middie every request skips its hook.
    skipMiddie: true,
    // Responses are ours to log (nestjs-pino); Fastify's own logger stays off.
    logger: false,
    routerOptions: { maxParamLength: 100 },
    // While draining, a request on a connection still open is served (with
    // `Connection: close`, see ShutdownService), not refused with Fastify's
    // plain 503.
    return503OnClosing: false,
    http: {
      // Node checks header/request timeouts this often (its default, 30 s,
      // would let a slowloris connection outlive HEADERS_TIMEOUT_MS by that much).
      connectionsCheckingInterval: 1000,
      // A missing Host is refused by RequestLimitsHook, with the JSON error.
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
  const fastify = app.getHttpAdapter().getInstance();
  const guards = accessGuards(app);
  if (guards.length > 0) app.useGlobalGuards(...guards);
  // No guard to pass first: a cache hit is answered before Nest routes it.
  else app.get(CacheService).answerHitsEarly(fastify);

  const config = app.get<ConfigType<typeof serverConfig>>(serverConfig.KEY);
  // The proxy forwards bytes: every content type is read raw, never parsed,
  // and a body over the limit is refused (413) as soon as it crosses it.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(
    '*',
    { bodyLimit: config.maxBodyBytes },
    (_request, payload, done) =>
      readRequestBody(payload, config.maxBodyBytes, done),
  );
  const server = app.getHttpServer();
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  server.headersTimeout = config.headersTimeoutMs;
  server.requestTimeout = config.requestTimeoutMs;

  const security = app.get<ConfigType<typeof securityConfig>>(
    securityConfig.KEY,
  );
  if (security.corsOrigins.length > 0) {
    app.enableCors({
      origin: security.corsOrigins.includes('*') ? '*' : security.corsOrigins,
      methods: ['GET', 'HEAD', 'POST'],
      exposedHeaders: [
        'X-Request-ID',
        'Retry-After',
        'RateLimit-Limit',
        'RateLimit-Remaining',
        'RateLimit-Reset',
        'WWW-Authenticate',
      ],
      maxAge: 600,
    });
  }
  return app;
}
