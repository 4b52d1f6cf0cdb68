import {
  Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { onRequestHookHandler } from 'fastify';
import { isQuietPath } from '../common/request-labels.js';
import { requestState } from '../common/request-state.js';
import type { tracingConfig } from '../config/tracing.config.js';
import { counter } from '../metrics/metrics.service.js';
import { version } from '../version.js';
import type { GatewayTracer } from './otel-tracer.js';

/** Longest wait for the last spans at shutdown (a collector that is down must not hold the exit). */
const SHUTDOWN_FLUSH_MS = 5000;

/**
 * OpenTelemetry tracing, or nothing: off (no OTLP endpoint set) it is a no-op
 * and no OpenTelemetry module is ever loaded; on, it loads the SDK and the
 * OTLP/HTTP exporter once at boot. The request path never calls it directly:
 * `traceRequest` (a Fastify hook installed only when tracing is on) puts
 * each request's trace on its state, where the stages find it.
 */
export class TracingService
  implements OnApplicationBootstrap, OnApplicationShutdown
{
  private static readonly logger = new Logger('Tracing');

  private constructor(
    private readonly tracer: GatewayTracer | undefined,
    private readonly config?: ConfigType<typeof tracingConfig>,
  ) {}

  static readonly off = new TracingService(undefined);

  static async create(
    config: ConfigType<typeof tracingConfig>,
  ): Promise<TracingService> {
    if (!config.enabled) return TracingService.off;
    const { createOtelTracer } = await import('./otel-tracer.js');
    // Registered only with tracing on: off, /metrics shows no tracing series.
    const exported = counter({
      name: 'gateway_tracing_spans_exported_total',
      help: 'Spans sent to the OTLP endpoint',
    });
    const dropped = counter({
      name: 'gateway_tracing_spans_dropped_total',
      help: 'Spans lost: queue full (the endpoint is slow or down), or their export failed',
      labelNames: ['reason'],
    });
    const logger = TracingService.logger;
    const tracer = await createOtelTracer(
      config,
      {
        exported: (count) => exported.inc(count),
        dropped: (reason, count) => dropped.labels(reason).inc(count),
      },
      {
        error: (message) => logger.warn(message),
        warn: (message) => logger.warn(message),
        info: (message) => logger.debug(message),
        debug: (message) => logger.debug(message),
        verbose: (message) => logger.verbose(message),
      },
      version,
    );
    return new TracingService(tracer, config);
  }

  /** The boot line, once the application's logger is in place (at create, none is yet). */
  onApplicationBootstrap(): void {
    const config = this.config;
    if (!config) return;
    TracingService.logger.log(
      {
        endpoint: config.url,
        protocol: config.protocol,
        sampler: config.sampler,
        sampler_arg: config.samplerRatio,
      },
      'tracing on: OTLP/HTTP export',
    );
  }

  get enabled(): boolean {
    return this.tracer !== undefined;
  }

  /** Fastify onRequest hook (tracing on only): starts the request's trace. Probes and scrapes get none. */
  readonly traceRequest: onRequestHookHandler = (request, _reply, done) => {
    if (this.tracer && !isQuietPath(request.url))
      requestState(request).trace = this.tracer.startRequest(request);
    done();
  };

  async onApplicationShutdown(): Promise<void> {
    if (!this.tracer) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.tracer.shutdown().catch(() => undefined),
      new Promise((resolve) => {
        timer = setTimeout(resolve, SHUTDOWN_FLUSH_MS);
      }),
    ]);
    clearTimeout(timer);
  }
}
