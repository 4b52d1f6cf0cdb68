import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { finalStatus } from '../common/request-context.js';
import { TracingService } from './tracing.service.js';

/** Probes and scrapes: not worth a trace each. */
const UNTRACED_PATHS = /^\/(health(\/|\?|$)|metrics(\?|$))/;

/**
 * Starts the trace of every request (a Fastify onRequest hook, so guards'
 * decisions land on it as events) and ends its server span when the response
 * closes. With tracing off no hook is added at all.
 */
@Injectable()
export class TracingHook implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly tracing: TracingService,
  ) {}

  onModuleInit(): void {
    if (!this.tracing.enabled) return;
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    fastify.addHook('onRequest', (request, reply, done) => {
      if (UNTRACED_PATHS.test(request.url)) return done();
      const trace = this.tracing.startRequest(request);
      if (!trace) return done();
      (request.raw.gateway ??= {}).trace = trace;
      if (trace.recording) {
        reply.raw.once('close', () => {
          const body = request.body;
          trace.end(
            finalStatus(request.raw, reply.raw),
            Buffer.isBuffer(body)
              ? body.length
              : contentLength(request.headers['content-length']),
          );
        });
      }
      done();
    });
  }
}

function contentLength(header: string | undefined): number | undefined {
  const length = Number(header);
  return header && Number.isInteger(length) ? length : undefined;
}
