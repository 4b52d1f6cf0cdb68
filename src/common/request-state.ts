import type {
  IncomingHttpHeaders,
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from 'node:http';
import type { Priority } from './priority.js';

/** Span attribute values the gateway records (a subset of OpenTelemetry's). */
export type TraceAttributes = Record<string, string | number | boolean>;

/** Where an attempt went, as a client span names it. */
export interface TraceTarget {
  readonly url: string;
  readonly address: string;
  readonly port: number;
  readonly origin: string;
}

/** The client span of one backend attempt. */
export interface AttemptSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** Ends the span with the backend's status, or the failure's reason. */
  end(status: number | 'error', failure: string | undefined): void;
}

/**
 * The trace of one request (tracing on only): the tracing module makes it,
 * the stages of the request path call it as `state.trace?.…`, so with
 * tracing off the cost is that one check.
 */
export interface RequestTrace {
  /** False for a sampled-out request: no span to end, nothing exported. */
  readonly recording: boolean;
  /** Set when the request is sampled (its spans are exported): for log lines. */
  readonly traceId: string | undefined;
  readonly spanId: string | undefined;
  /**
   * One try on one backend: sets the `traceparent` of `headers` for it and,
   * on a sampled request, starts its client span (else returns undefined).
   */
  attempt(
    headers: IncomingHttpHeaders | OutgoingHttpHeaders,
    target: TraceTarget,
    path: string,
    attempt: number,
    retryReason: string | undefined,
  ): AttemptSpan | undefined;
  /** A span event on the request's server span (sampled requests only). */
  event(name: string, attributes?: TraceAttributes): void;
  /** Links the server span to another trace's span (the batch call it rode in). */
  link(traceId: string, spanId: string): void;
  /** Ends the server span when the response closes. */
  end(status: number, bodySize: number | undefined): void;
}

/** Counts a finished exchange somewhere else too (a model version's metrics). */
export interface ExchangeRecorder {
  record(status: number, seconds: number): void;
}

export type CacheResult = 'hit' | 'miss' | 'bypass' | 'error';

/** How a shadow copy's answer compared with the client's (`uncompared`: no answer to compare). */
export type ShadowResult = 'match' | 'mismatch' | 'error' | 'uncompared';

/** A shadow copy sent for the request (a model's mirror): its version, and its comparison once known. */
export interface ShadowCopy {
  readonly version: string;
  readonly result: Promise<ShadowResult>;
}

/** Takes a sampled exchange once its response has closed (inference capture). */
export interface ExchangeCapture {
  closed(status: number, elapsedMs: number): void;
}

/**
 * What the gateway learns about one request (Envoy's StreamInfo): made with
 * the request id before any hook runs, written by the stages of the request
 * path, read when the response closes by the access log, the metrics and
 * the trace. One object per request, every field present from the start.
 */
export class RequestState {
  /** The backend of the last attempt, its status and round trip. */
  backend: string | undefined = undefined;
  backendStatus: number | 'error' | undefined = undefined;
  backendDurationMs: number | undefined = undefined;
  /** The answer is a backend's, relayed as it came (no gateway headers added). */
  relayed = false;
  /** With a routes file: the model and version that served the request. */
  model: string | undefined = undefined;
  version: string | undefined = undefined;
  /** The version's own metrics, counted when the response closes. */
  versionMetrics: ExchangeRecorder | undefined = undefined;
  /** Short id of the API key that authenticated the request (never the key). */
  keyId: string | undefined = undefined;
  /** SHA-256 of that key (or of the tenant): what scopes the cache (CACHE_SCOPE=key). */
  keyDigest: Buffer | undefined = undefined;
  /** With TENANTS_FILE: the tenant's name from the file, or `default`. */
  tenant: string | undefined = undefined;
  /** The tenant's class in admission control (never the client's say). */
  priority: Priority = 'standard';
  /** Response cache result (unset: cache off). */
  cache: CacheResult | undefined = undefined;
  /** Body bytes of an answer written past Fastify (a cache hit): for the log. */
  bytes: number | undefined = undefined;
  /** Request body bytes this request holds of MAX_BUFFERED_BODY_BYTES. */
  bodyBytes = 0;
  /** The batch call it rode in (micro-batching), and how many items it had. */
  batchId: string | undefined = undefined;
  batchSize: number | undefined = undefined;
  /** The shadow copy sent beside it, when its model's mirror sampled it. */
  shadow: ShadowCopy | undefined = undefined;
  /** Inference capture, set only on a sampled request: told when the response closes. */
  capture: ExchangeCapture | undefined = undefined;
  /**
   * Status to count when the gateway cut the exchange itself: the
   * client-error handler answered on the socket (4xx), or a streamed answer
   * was cut (502 backend reset, 504 stall). Unset: 499.
   */
  cutStatus: number | undefined = undefined;
  /** The request's trace: set only when tracing is on. */
  trace: RequestTrace | undefined = undefined;

  constructor(readonly requestId: string) {}
}

// Keyed by Node's request: the client-error handler, which sees no Fastify
// request, finds a request's state too. Only this file reads or writes it.
// Nothing a state holds may reach back to its request (Fastify's or Node's,
// the reply, the socket): V8's young-generation collector keeps WeakMap
// values alive, so a state that reaches its key keeps the whole request
// through every scavenge until it is promoted to old space (inference
// capture did: GC cost more than capture itself).
const states = new WeakMap<IncomingMessage, RequestState>();

/** Makes the state of a request that has just arrived (Fastify's genReqId). */
export function openRequestState(
  req: IncomingMessage,
  requestId: string,
): RequestState {
  const state = new RequestState(requestId);
  states.set(req, state);
  return state;
}

/** The state of a request Fastify handles (made before any of its hooks). */
export function requestState(request: { raw: IncomingMessage }): RequestState {
  return states.get(request.raw) as RequestState;
}

/** The state of a request seen only as Node's (undefined: Fastify never saw it). */
export function rawRequestState(
  req: IncomingMessage,
): RequestState | undefined {
  return states.get(req);
}

/**
 * The status a finished exchange counts with: the one sent, 499 (nginx's
 * "client closed request") when the client left before the answer ended, or
 * the status the gateway gave when it cut the exchange itself (`cutStatus`).
 */
export function finalStatus(
  state: RequestState | undefined,
  response: ServerResponse,
): number {
  if (response.writableFinished) return response.statusCode;
  return state?.cutStatus ?? 499;
}
