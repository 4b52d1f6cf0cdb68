// Loaded with import() only when tracing is on: every OpenTelemetry package
// is imported dynamically too, so the bundle (where they stay external) and
// a gateway without tracing never load them.
import type {
  Context,
  Counter,
  DiagLogger,
  Meter,
  MeterProvider,
  Span,
  Tracer,
} from '@opentelemetry/api';
import type { Sampler } from '@opentelemetry/sdk-trace';
import type { FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { ConfigType } from '@nestjs/config';
import type { tracingConfig } from '../config/tracing.config.js';
import { pathOf } from '../common/request-labels.js';
import type {
  AttemptSpan,
  RequestTrace,
  TraceAttributes,
  TraceTarget,
} from '../common/request-state.js';

type Api = typeof import('@opentelemetry/api');
type TracingConfig = ConfigType<typeof tracingConfig>;

/** What the span processor reports: spans exported, or dropped and why. */
export interface SpanOutcomes {
  exported(count: number): void;
  dropped(reason: 'queue_full' | 'export_failed', count: number): void;
}

export interface GatewayTracer {
  startRequest(request: FastifyRequest): RequestTrace;
  /** Exports what is queued (bounded by the export timeout) and stops. */
  shutdown(): Promise<void>;
}

const SERVER = 1; // SpanKind.SERVER
const CLIENT = 2; // SpanKind.CLIENT
const ERROR = 2; // SpanStatusCode.ERROR
/** The processor's own metric (OpenTelemetry semantic conventions for the SDK). */
const PROCESSED_SPANS = 'otel.sdk.processor.span.processed';

export async function createOtelTracer(
  config: TracingConfig,
  outcomes: SpanOutcomes,
  diagLogger: DiagLogger,
  version: string,
): Promise<GatewayTracer> {
  const [api, core, sdk, resources, exporters] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/core'),
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/resources'),
    config.protocol === 'http/json'
      ? import('@opentelemetry/exporter-trace-otlp-http')
      : import('@opentelemetry/exporter-trace-otlp-proto'),
  ]);
  // Failed exports reach the log as warnings, never the request path.
  api.diag.setLogger(diagLogger, api.DiagLogLevel.WARN);

  const ratio = new sdk.TraceIdRatioBasedSampler(config.samplerRatio);
  const samplers: Record<TracingConfig['sampler'], () => Sampler> = {
    always_on: () => new sdk.AlwaysOnSampler(),
    always_off: () => new sdk.AlwaysOffSampler(),
    traceidratio: () => ratio,
    parentbased_always_on: () =>
      new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() }),
    parentbased_always_off: () =>
      new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() }),
    parentbased_traceidratio: () => new sdk.ParentBasedSampler({ root: ratio }),
  };
  const exporter = new exporters.OTLPTraceExporter({ url: config.url });
  const provider = new sdk.TracerProvider({
    sampler: samplers[config.sampler](),
    resource: resources.defaultResource().merge(
      resources.resourceFromAttributes({
        'service.version': version,
        ...config.resourceAttributes,
        'service.name': config.serviceName,
      }),
    ),
    spanProcessors: [
      new sdk.BatchSpanProcessor({
        exporter,
        ...config.batch,
        selfObsMeterProvider: outcomeMeter(api, outcomes),
      }),
    ],
  });
  const tracer = provider.getTracer('api-gateway', version);

  /** The client's trace context (W3C traceparent/tracestate), if it sent one. */
  function parentOf(headers: IncomingHttpHeaders): Context {
    const traceparent = headers.traceparent;
    if (typeof traceparent !== 'string') return api.ROOT_CONTEXT;
    const remote = core.parseTraceParent(traceparent);
    if (!remote) return api.ROOT_CONTEXT;
    remote.isRemote = true;
    const tracestate = headers.tracestate;
    if (tracestate) {
      remote.traceState = new core.TraceState(
        Array.isArray(tracestate) ? tracestate.join(',') : tracestate,
      );
    }
    return api.trace.setSpanContext(api.ROOT_CONTEXT, remote);
  }

  return {
    startRequest(request) {
      const route = request.routeOptions.url;
      const span = tracer.startSpan(
        route ? `${request.method} ${route}` : request.method,
        { kind: SERVER },
        parentOf(request.headers),
      );
      return new OtelRequestTrace(api, tracer, span, request, route);
    },
    async shutdown() {
      await provider.shutdown();
    },
  };
}

/**
 * A MeterProvider for the batch processor's self-observability: its one
 * counter of processed spans becomes the gateway's Prometheus counters.
 */
function outcomeMeter(api: Api, outcomes: SpanOutcomes): MeterProvider {
  const noop = api.createNoopMeter();
  const counter: Counter = {
    add(count, attributes) {
      const error = attributes?.['error.type'];
      if (error === undefined) outcomes.exported(count);
      else
        outcomes.dropped(
          error === 'queue_full' ? 'queue_full' : 'export_failed',
          count,
        );
    },
  };
  const meter: Meter = Object.create(noop, {
    createCounter: {
      value: (name: string) =>
        name === PROCESSED_SPANS ? counter : noop.createCounter(name),
    },
  }) as Meter;
  return { getMeter: () => meter };
}

class OtelRequestTrace implements RequestTrace {
  readonly recording: boolean;
  readonly traceId: string | undefined;
  readonly spanId: string | undefined;
  /** For the backend when no client span is made (sampled out). */
  private readonly traceparent: string;
  /**
   * The tracestate the backend gets: the client's, as the SDK parsed it
   * (W3C rules: at most 32 valid members, 512 characters), on its trace
   * only; none on a new trace (a bad or missing traceparent).
   */
  private readonly tracestate: string | undefined;
  private readonly method: string;
  private context: Context | undefined;

  constructor(
    private readonly api: Api,
    private readonly tracer: Tracer,
    private readonly span: Span,
    request: FastifyRequest,
    route: string | undefined,
  ) {
    this.method = request.method;
    const context = span.spanContext();
    this.traceparent = traceparentOf(
      context.traceId,
      context.spanId,
      context.traceFlags,
    );
    this.tracestate = context.traceState?.serialize() || undefined;
    this.recording = span.isRecording();
    if (!this.recording) return;
    this.traceId = context.traceId;
    this.spanId = context.spanId;
    const attributes: TraceAttributes = {
      'http.request.method': request.method,
      'url.path': pathOf(request.url),
      'url.scheme': request.protocol,
      'server.address': request.hostname,
      'client.address': request.ip,
      'network.protocol.version': request.raw.httpVersion,
      'gateway.request_id': request.id,
    };
    const port = request.port;
    if (port !== null) attributes['server.port'] = port;
    if (route) attributes['http.route'] = route;
    const agent = request.headers['user-agent'];
    if (agent) attributes['user_agent.original'] = agent;
    span.setAttributes(attributes);
  }

  attempt(
    headers: IncomingHttpHeaders | OutgoingHttpHeaders,
    target: TraceTarget,
    path: string,
    attempt: number,
    retryReason: string | undefined,
  ): AttemptSpan | undefined {
    if (this.tracestate === undefined) delete headers.tracestate;
    else headers.tracestate = this.tracestate;
    if (!this.recording) {
      headers.traceparent = this.traceparent;
      return undefined;
    }
    const attributes: TraceAttributes = {
      'http.request.method': this.method,
      'server.address': target.address,
      'server.port': target.port,
      'url.full': target.origin + path,
      'gateway.backend': target.url,
    };
    if (attempt > 0) {
      attributes['http.request.resend_count'] = attempt;
      if (retryReason) attributes['gateway.retry.reason'] = retryReason;
    }
    this.context ??= this.api.trace.setSpan(this.api.ROOT_CONTEXT, this.span);
    const span = this.tracer.startSpan(
      this.method,
      { kind: CLIENT, attributes },
      this.context,
    );
    const context = span.spanContext();
    headers.traceparent = traceparentOf(
      context.traceId,
      context.spanId,
      context.traceFlags,
    );
    return {
      traceId: context.traceId,
      spanId: context.spanId,
      end(status, failure) {
        if (typeof status === 'number')
          span.setAttribute('http.response.status_code', status);
        if (failure) {
          span.setAttribute(
            'error.type',
            typeof status === 'number' && status >= 500
              ? String(status)
              : failure,
          );
          span.setStatus({ code: ERROR, message: failure });
        }
        span.end();
      },
    };
  }

  event(name: string, attributes?: TraceAttributes): void {
    if (this.recording) this.span.addEvent(name, attributes);
  }

  link(traceId: string, spanId: string): void {
    if (this.recording)
      this.span.addLink({ context: { traceId, spanId, traceFlags: 1 } });
  }

  end(status: number, bodySize: number | undefined): void {
    if (!this.recording) return;
    const span = this.span;
    span.setAttribute('http.response.status_code', status);
    if (bodySize !== undefined)
      span.setAttribute('http.request.body.size', bodySize);
    // Server spans: only 5xx are the server's errors (4xx are the client's).
    if (status >= 500) {
      span.setAttribute('error.type', String(status));
      span.setStatus({ code: ERROR });
    }
    span.end();
  }
}

function traceparentOf(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-0${flags & 1}`;
}
