import { type Dispatcher, Pool } from 'undici';
import {
  bodyOf,
  type CaptureEvent,
  type CaptureSink,
  eventAttributes,
  type SendResult,
} from './capture-event.js';

type DispatchController = Dispatcher.DispatchController;

/** POSTs in flight to the sink at most (one per connection). */
const CONNECTIONS = 8;
const EMPTY = Buffer.alloc(0);
/** Why our own timer aborted a POST. */
const TIMED_OUT = 'capture sink timeout';

/**
 * CloudEvents 1.0 over HTTP in binary content mode, as KServe's inference
 * logger sends them: one POST per event, the body as it is, the context in
 * `ce-*` headers. Its own undici Pool (never the backends'), keep-alive,
 * each POST bounded by CAPTURE_TIMEOUT_MS as a whole (a timer of ours:
 * undici's headers and body timers tick only every half second).
 */
export class HttpSink implements CaptureSink {
  readonly name = 'http';
  readonly batchSize = 1;
  readonly concurrency = CONNECTIONS;
  /** One POST per event whatever the batch: nothing gained by waiting. */
  readonly lingerMs = 0;
  private readonly pool: Pool;
  private readonly path: string;

  constructor(
    url: string,
    /** CAPTURE_HEADERS, or the current version of CAPTURE_HEADERS_FILE. */
    private readonly extraHeaders: () => Readonly<Record<string, string>>,
    private readonly timeoutMs: number,
  ) {
    const parsed = new URL(url);
    this.path = parsed.pathname + parsed.search;
    this.pool = new Pool(parsed.origin, {
      connections: CONNECTIONS,
      pipelining: 1,
      connect: { timeout: timeoutMs },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  }

  /** The exchange's events one after the other: the request's first. */
  async send(events: readonly CaptureEvent[]): Promise<SendResult[]> {
    const results: SendResult[] = [];
    for (const event of events) results.push(await this.post(event));
    return results;
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }

  private post(event: CaptureEvent): Promise<SendResult> {
    const body = bodyOf(event);
    const headers: Record<string, string> = { ...this.extraHeaders() };
    const attributes = eventAttributes(event);
    for (let i = 0; i < attributes.length; i += 2)
      headers[`ce-${attributes[i]}`] = headerValue(attributes[i + 1]);
    if (body.contentType !== undefined)
      headers['content-type'] = body.contentType;
    return new Promise((resolve) => {
      const post = new SinkPost(resolve, this.timeoutMs);
      try {
        this.pool.dispatch(
          {
            path: this.path,
            method: 'POST',
            headers,
            body: body.data ?? EMPTY,
          },
          post,
        );
      } catch {
        // A header value undici refuses, say: this event cannot go.
        post.refused();
      }
    });
  }
}

/** One POST: only its status matters; the answer's body is read and dropped. */
class SinkPost implements Dispatcher.DispatchHandler {
  private status = 0;
  private settled = false;
  private controller: DispatchController | undefined;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly resolve: (result: SendResult) => void,
    timeoutMs: number,
  ) {
    this.timer = setTimeout(() => {
      this.controller?.abort(new Error(TIMED_OUT));
      // Not started yet (waiting for a connection): it ends here all the same.
      this.settle('timeout');
    }, timeoutMs);
  }

  refused(): void {
    this.settle('rejected');
  }

  onRequestStart(controller: DispatchController): void {
    this.controller = controller;
    if (this.settled) controller.abort(new Error(TIMED_OUT));
  }

  onResponseStart(_controller: DispatchController, status: number): void {
    this.status = status;
  }

  onResponseData(): void {}

  onResponseEnd(): void {
    const { status } = this;
    if (status >= 200 && status < 300) this.settle('delivered');
    // A sink that is busy or failing may take it later; any other answer is final.
    else if (status === 408 || status === 429 || status >= 500)
      this.settle('error');
    else this.settle('rejected');
  }

  onResponseError(_controller: DispatchController, err: Error): void {
    // Ours, or undici's HeadersTimeoutError, BodyTimeoutError, ConnectTimeoutError.
    this.settle(
      err.message === TIMED_OUT || /Timeout/.test(err.name)
        ? 'timeout'
        : 'error',
    );
  }

  private settle(result: SendResult): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.timer);
    this.resolve(result);
  }
}

/**
 * A header value as the CloudEvents HTTP binding wants it: space, `"`, `%`
 * and anything outside printable ASCII percent-encoded (UTF-8).
 */
export function headerValue(value: string): string {
  if (/^[\x21\x23-\x24\x26-\x7e]*$/.test(value)) return value;
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    out +=
      byte > 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x25
        ? String.fromCharCode(byte)
        : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
