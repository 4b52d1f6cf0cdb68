import type { FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import type {
  ExchangeCapture,
  RequestState,
  ShadowResult,
} from '../common/request-state.js';
import type { BackendAnswer } from '../proxy/backend-call.js';
import { BodyCapturer, type CapturedBody } from './capture-body.js';
import type { CapturedExchange } from './packed-exchange.js';

/** The answer the client got, as the stages after capture settle with it. */
export type CaptureOutcome = Promise<BackendAnswer | undefined> | undefined;

/** ce-source: the gateway and the model (`default`: BACKEND_URL(S), no routes file). */
const sourceOf = (model: string | undefined) =>
  `api-gateway/models/${model === undefined ? 'default' : encodeURIComponent(model)}`;

const X_CACHE = { hit: 'HIT', miss: 'MISS', error: 'MISS', bypass: 'BYPASS' };

/** Where a finished exchange goes (the capture service's buffers). */
export type ExchangeSink = (exchange: CapturedExchange) => void;

/**
 * One sampled request, from the capture stage to its events: it waits for
 * the answer the client got (the stages' outcome), for the response to
 * close (the final status and latency) and, when a shadow copy ran, for its
 * comparison; then it builds the exchange and hands it on. Nothing of it
 * runs before the client has its answer.
 */
export class SampledExchange implements ExchangeCapture {
  private waiting = 2;
  private answer: BackendAnswer | undefined;
  private status = 0;
  private elapsedMs = 0;
  private closedAt = 0;
  // What it needs of the request, never the request itself: the request's
  // state holds it, and a state must not reach its request (see
  // request-state.ts: it would keep every sampled request from
  // young-generation collection).
  private readonly id: string;
  private readonly body: Buffer | Buffer[] | undefined;
  private readonly contentType: string | undefined;
  private readonly sentTraceparent: string | string[] | undefined;

  constructor(
    request: FastifyRequest,
    private readonly state: RequestState,
    private readonly endpoint: string,
    private readonly bodies: BodyCapturer,
    private readonly sink: ExchangeSink,
  ) {
    this.id = request.id;
    this.body = request.body as Buffer | Buffer[] | undefined;
    this.contentType = header(request.headers['content-type']);
    this.sentTraceparent = request.headers.traceparent;
  }

  /** The stages' outcome (undefined: they settled with no answer, or threw). */
  answered(outcome: CaptureOutcome): void {
    if (!outcome) return this.ready();
    outcome.then(
      (answer) => {
        this.answer = answer;
        this.ready();
      },
      () => this.ready(),
    );
  }

  closed(status: number, elapsedMs: number): void {
    this.status = status;
    this.elapsedMs = elapsedMs;
    this.closedAt = Date.now();
    this.ready();
  }

  private ready(): void {
    if (--this.waiting > 0) return;
    const shadow = this.state.shadow;
    if (!shadow) return this.build(undefined);
    shadow.result.then(
      (result) => this.build(result),
      () => this.build('error'),
    );
  }

  /** Synchronous unless a body over the limit is hashed. */
  private build(shadow: ShadowResult | undefined): void {
    const request = this.bodies.capture(this.body, this.contentType);
    const response = answerBody(this.answer, this.bodies);
    if (request instanceof Promise || response instanceof Promise)
      void Promise.all([request, response]).then(([req, res]) =>
        this.hand(req, res, shadow),
      );
    else this.hand(request, response, shadow);
  }

  private hand(
    request: CapturedBody,
    response: CapturedBody,
    shadow: ShadowResult | undefined,
  ): void {
    const end = this.closedAt;
    this.sink({
      id: this.id,
      source: sourceOf(this.state.model),
      requestTime: new Date(end - this.elapsedMs).toISOString(),
      responseTime: new Date(end).toISOString(),
      attributes: this.attributes(shadow),
      request,
      response,
    });
  }

  private attributes(shadow: ShadowResult | undefined): Record<string, string> {
    const { state } = this;
    const attributes: Record<string, string> = {
      endpoint: this.endpoint,
      status: String(this.status),
      latencyms: this.elapsedMs.toFixed(3),
    };
    if (state.model !== undefined) {
      attributes.model = state.model;
      // KServe's logger names the model so: its consumers group by it.
      attributes.inferenceservicename = state.model;
    }
    if (state.version !== undefined) attributes.version = state.version;
    const traceparent = traceparentOf(this.sentTraceparent, state);
    if (traceparent) attributes.traceparent = traceparent;
    if (state.tenant !== undefined) attributes.tenant = state.tenant;
    if (state.cache !== undefined) attributes.cache = X_CACHE[state.cache];
    if (state.batchId !== undefined) {
      attributes.batchid = state.batchId;
      attributes.batchsize = String(state.batchSize);
    }
    if (state.shadow && shadow) {
      attributes.shadow = shadow;
      attributes.shadowversion = state.shadow.version;
    }
    return attributes;
  }
}

/** The answer's body as its event carries it: a streamed or absent one is omitted. */
function answerBody(
  answer: BackendAnswer | undefined,
  bodies: BodyCapturer,
): CapturedBody | Promise<CapturedBody> {
  if (!answer) return BodyCapturer.omitted(undefined, undefined);
  const contentType = header(answer.headers['content-type']);
  if (answer.body instanceof Readable) {
    const length = Number(answer.headers['content-length']);
    return BodyCapturer.omitted(
      contentType,
      Number.isSafeInteger(length) ? length : undefined,
    );
  }
  return bodies.capture(answer.body, contentType);
}

/** The request's trace: its server span when traced, else the client's traceparent. */
function traceparentOf(
  sent: string | string[] | undefined,
  state: RequestState,
): string | undefined {
  const trace = state.trace;
  if (trace?.traceId && trace.spanId)
    return `00-${trace.traceId}-${trace.spanId}-01`;
  return typeof sent === 'string' &&
    /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/.test(sent)
    ? sent
    : undefined;
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
