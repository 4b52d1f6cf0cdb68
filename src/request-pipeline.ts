import type { ConfigType } from '@nestjs/config';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type {
  FastifyError,
  FastifyReply,
  FastifyRequest,
  onRequestHookHandler,
} from 'fastify';
import type { Server } from 'node:http';
import { ClientErrorHandler } from './common/client-error.handler.js';
import { errorAnswer } from './common/json-error.js';
import { watchEarlyRejects } from './common/early-reject.js';
import {
  BodyBudget,
  readRequestBody,
  requestBodySize,
} from './common/request-body.js';
import {
  addSecurityHeaders,
  checkRequestHead,
} from './common/request-limits.js';
import { finalStatus, requestState } from './common/request-state.js';
import { securityConfig } from './config/security.config.js';
import { serverConfig } from './config/server.config.js';
import { ShutdownService } from './health/shutdown.service.js';
import { AccessLog } from './logging/access-log.js';
import { HttpMetrics } from './metrics/http-metrics.js';
import { TracingService } from './tracing/tracing.service.js';

/** What Fastify's router cannot take (a bad URL, a path parameter too long). */
export type FrameworkErrorHandler = (
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
) => void;

/**
 * The request pipeline: every listener the gateway puts on Node's server
 * and every Fastify hook, in the order they run for a request, each a named
 * function of the module that owns it. The handler in the middle is Nest's
 * router; the prediction routes' own path is predict/predict.pipeline.ts.
 * Installed once, before the application starts listening. Returns the
 * handler of Fastify's `frameworkErrors` option (set on the adapter).
 */
export function installRequestPipeline(
  app: NestFastifyApplication,
): FrameworkErrorHandler {
  const server: Server = app.getHttpServer();
  const fastify = app.getHttpAdapter().getInstance();
  const config = app.get<ConfigType<typeof serverConfig>>(serverConfig.KEY);
  const shutdown = app.get(ShutdownService);
  const tracing = app.get(TracingService);
  const metrics = app.get(HttpMetrics);
  const accessLog = app.get(AccessLog);
  const bodies = new BodyBudget(config.maxBufferedBodyBytes, () =>
    metrics.countShed('body_budget'),
  );
  const clientErrors = new ClientErrorHandler(
    server,
    config.maxBodyBytes,
    metrics.countUnrouted,
  );

  // 1. A connection opens.
  server.on('connection', shutdown.trackConnection);
  // Watches Node's parser per connection: a first request line without a
  // version, a chunk size over MAX_BODY_BYTES (also a first 'request' listener).
  watchEarlyRejects(server, clientErrors.earlyRejects);

  // 2. Bytes Node cannot take as a request: answered below Fastify.
  server.removeAllListeners('clientError');
  server.on('clientError', clientErrors.onClientError);
  server.on('connect', clientErrors.onConnect);
  server.on('checkContinue', clientErrors.onCheckContinue);
  server.on('checkExpectation', clientErrors.onCheckExpectation);

  // 3. A request's head is parsed.
  server.prependListener('request', shutdown.closeWhenDraining);
  // Fastify's genReqId (common/request-id.ts, set on the adapter in
  // app.factory.ts): the request id and the request's state.

  // 4. onRequest: one 'close' listener per request feeds everything that
  // reports a finished exchange (never Fastify's onResponse: it does not
  // fire for a client that left): metrics, access log, trace, version
  // metrics, inference capture.
  const closed = (request: FastifyRequest, reply: FastifyReply): void => {
    const state = requestState(request);
    bodies.release(state);
    const status = finalStatus(state, reply.raw);
    metrics.record(request, reply, status, state.tenant);
    accessLog.write(request, reply, state, status);
    if (state.trace?.recording)
      state.trace.end(status, requestBodySize(request));
    state.versionMetrics?.record(status, reply.elapsedTime / 1000);
    // Inference capture (a sampled request only): its events go out from here on.
    state.capture?.closed(status, reply.elapsedTime);
  };
  const onResponseClosed: onRequestHookHandler = (request, reply, done) => {
    // `on`, not `once`: a response closes once, and once's wrapper is garbage.
    reply.raw.on('close', () => closed(request, reply));
    done();
  };
  fastify.addHook('onRequest', onResponseClosed);
  if (tracing.enabled) fastify.addHook('onRequest', tracing.traceRequest);
  enableCors(app);

  // 5. preParsing: what Node's parser lets through but a gateway must not.
  fastify.addHook('preParsing', checkRequestHead);

  // 6. The body: read raw for every content type (the proxy forwards bytes),
  // 413 as soon as it crosses MAX_BODY_BYTES, 503 when all bodies held at
  // once would cross MAX_BUFFERED_BODY_BYTES.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(
    '*',
    { bodyLimit: config.maxBodyBytes },
    (request, payload, done) =>
      readRequestBody(
        payload,
        config.maxBodyBytes,
        bodies,
        requestState(request),
        done,
      ),
  );

  // 7. The handler: Nest's router and guards, the controllers; errors go to
  // HttpExceptionFilter (APP_FILTER in app.module.ts).

  // 8. onSend: the security headers on the gateway's own answers.
  fastify.addHook('onSend', addSecurityHeaders);

  // Before any hook: a URL Fastify's router refuses (`/%ff`, a path
  // parameter over 100 characters) gets the gateway's JSON error, and is
  // logged and counted like any other answer.
  return (error, request, reply) => {
    reply.raw.on('close', () => closed(request, reply));
    const status = error.statusCode === 414 ? 414 : 400;
    const { body, headers } = errorAnswer(
      status,
      status === 414 ? 'a path segment is too long' : 'malformed URL',
      request.id,
    );
    void reply.code(status).headers(headers).send(body);
  };
}

/** CORS_ORIGINS: @fastify/cors, whose onRequest hook runs after the ones above. */
function enableCors(app: NestFastifyApplication): void {
  const { corsOrigins } = app.get<ConfigType<typeof securityConfig>>(
    securityConfig.KEY,
  );
  if (corsOrigins.length === 0) return;
  app.enableCors({
    origin: corsOrigins.includes('*') ? '*' : corsOrigins,
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
