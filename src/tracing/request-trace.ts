import type { IncomingHttpHeaders } from 'node:http';

/** Span attribute values the gateway records (a subset of OpenTelemetry's). */
export type TraceAttributes = Record<string, string | number | boolean>;

/**
 * The trace of one request, made by TracingHook only when tracing is on and
 * kept on `request.raw.gateway.trace`: code on the request path calls it as
 * `info.trace?.…`, so with tracing off the cost is that one check.
 */
export interface RequestTrace {
  /** Set when the request is sampled (its spans are exported): for log lines. */
  readonly traceId: string | undefined;
  readonly spanId: string | undefined;
  /**
   * One try on one backend: sets the `traceparent` of `headers` for it and,
   * on a sampled request, starts its client span (else returns undefined).
   */
  attempt(
    headers: IncomingHttpHeaders,
    backendUrl: string,
    path: string,
    attempt: number,
    retryReason: string | undefined,
  ): AttemptTrace | undefined;
  /**
   * A span event on the request's server span (sampled requests only). Names
   * in use: `gateway.rate_limit`; reserved for the features that add them:
   * `gateway.queue`, `gateway.cache`, `gateway.shed`.
   */
  event(name: string, attributes?: TraceAttributes): void;
}

/** The client span of one backend attempt. */
export interface AttemptTrace {
  readonly traceId: string;
  readonly spanId: string;
  /** Ends the span with the backend's status, or the failure's reason. */
  end(status: number | 'error', failure: string | undefined): void;
}
