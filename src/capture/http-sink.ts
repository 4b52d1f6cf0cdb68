import type { Socket } from 'node:net';
import { buildConnector, Client, type Dispatcher } from 'undici';
import {
  bodyOf,
  type CaptureEvent,
  type CaptureSink,
  eventAttributes,
  type SendResult,
} from './capture-event.js';

type DispatchController = Dispatcher.DispatchController;

/** Connections to the sink, one send (a batch) in flight on each: more only while a backlog drains. */
const CONNECTIONS = 4;
/** Exchanges per send: their POSTs go out pipelined, in one write. */
const BATCH_EXCHANGES = 16;
/** How long the first exchange after a quiet spell waits for company. */
const LINGER_MS = 20;
/** POSTs in flight on a connection at most: a whole send (two per exchange). */
const PIPELINE_DEPTH = 2 * BATCH_EXCHANGES;
const EMPTY = Buffer.alloc(0);
/** Why our own timer aborted a POST. */
const TIMED_OUT = 'capture sink timeout';

/**
 * CloudEvents 1.0 over HTTP in binary content mode, as KServe's inference
 * logger sends them: one POST per event, the body as it is, the context in
 * `ce-*` headers. Its own undici Clients (never the backends'). A send's
 * POSTs (a batch of exchanges, each request event before its response
 * event) are pipelined on one connection and written in one go: on a 2-CPU
 * machine a write per event cost more than the rest of the event. A send
 * ends when no answer has come for CAPTURE_TIMEOUT_MS (a timer of ours:
 * undici's headers and body timers tick only every half second).
 */
export class HttpSink implements CaptureSink {
  readonly name = 'http';
  readonly batchSize = BATCH_EXCHANGES;
  readonly concurrency = CONNECTIONS;
  readonly lingerMs = LINGER_MS;
  private readonly connections: SinkConnection[] = [];
  private readonly path: string;

  constructor(
    url: string,
    /** CAPTURE_HEADERS, or the current version of CAPTURE_HEADERS_FILE. */
    private readonly extraHeaders: () => Readonly<Record<string, string>>,
    private readonly timeoutMs: number,
  ) {
    const parsed = new URL(url);
    this.path = parsed.pathname + parsed.search;
    const connect = buildConnector({ timeout: timeoutMs });
    for (let i = 0; i < CONNECTIONS; i++)
      this.connections.push(
        new SinkConnection(parsed.origin, connect, timeoutMs),
      );
  }

  /** The events in order, on an idle connection; what is unanswered at the timeout times out. */
  async send(events: readonly CaptureEvent[]): Promise<SendResult[]> {
    const connection =
      this.connections.find((c) => !c.busy) ?? this.connections[0];
    connection.busy = true;
    // Each answer restarts the clock: a receiver that is slow but answers
    // is given the time, one that falls silent is cut.
    const timer = setTimeout(() => {
      for (const post of posts) post.timeOut();
    }, this.timeoutMs);
    const answered = () => {
      timer.refresh();
      connection.answered();
    };
    const posts = events.map(() => new SinkPost(answered));
    connection.write(() =>
      events.forEach((event, i) =>
        this.post(connection.client, event, posts[i]),
      ),
    );
    try {
      return await Promise.all(posts.map((post) => post.result));
    } finally {
      clearTimeout(timer);
      connection.busy = false;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.connections.map((c) => c.client.destroy()));
  }

  private post(client: Client, event: CaptureEvent, post: SinkPost): void {
    const body = bodyOf(event);
    const headers: string[] = [];
    const extra = this.extraHeaders();
    for (const name in extra) headers.push(name, extra[name]);
    const attributes = eventAttributes(event);
    for (let i = 0; i < attributes.length; i += 2)
      headers.push(`ce-${attributes[i]}`, headerValue(attributes[i + 1]));
    if (body.contentType !== undefined)
      headers.push('content-type', body.contentType);
    try {
      client.dispatch(
        {
          path: this.path,
          method: 'POST',
          headers,
          body: body.data ?? EMPTY,
          // An event sent twice is the same event (its id and source):
          // so undici may pipeline these POSTs, and sends again those a
          // closed connection left unanswered.
          idempotent: true,
          blocking: false,
        },
        post,
      );
    } catch {
      // A header value undici refuses, say: this event cannot go.
      post.refused();
    }
  }
}

/**
 * One connection to the sink (an undici Client holds at most one). Its
 * POSTs go one at a time until its socket has stayed open after an answer;
 * from then on they are pipelined, and a send's are corked so that they
 * leave in one write. (A receiver that closes the connection after each
 * answer would process the rest of a pipeline unanswered, and have it sent
 * again.)
 */
class SinkConnection {
  readonly client: Client;
  /** A send is in flight on it. */
  busy = false;
  private socket: Socket | undefined;
  private trusted = false;

  constructor(
    origin: string,
    connect: buildConnector.connector,
    timeoutMs: number,
  ) {
    this.client = new Client(origin, {
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      connect: (options, callback) =>
        connect(options, (...result) => {
          this.socket = result[1] ?? undefined;
          this.trusted = false;
          this.client.pipelining = 1;
          callback(...result);
        }),
    });
  }

  /** Runs `dispatch`: once trusted, the POSTs it queues leave in one write. */
  write(dispatch: () => void): void {
    const socket = this.trusted ? this.socket : undefined;
    if (!socket || socket.destroyed) return dispatch();
    corked(socket, dispatch);
  }

  /** An answer came: if the socket is still open right after it, what waits goes out pipelined. */
  readonly answered = (): void => {
    if (this.trusted) return;
    const socket = this.socket;
    // undici has closed a socket that does not keep alive by then.
    process.nextTick(() => {
      if (this.trusted || socket !== this.socket || !socket || socket.destroyed)
        return;
      this.trusted = true;
      // Raising the depth writes what is pending.
      corked(socket, () => (this.client.pipelining = PIPELINE_DEPTH));
    });
  };
}

/**
 * Runs `write` with the socket corked until the turn after: undici writes
 * to a socket that was idle only then (in a setImmediate, once it has seen
 * that the socket was not closed meanwhile), so uncorking right away would
 * send each POST on its own (a write per event: the cost this avoids).
 */
function corked(socket: Socket, write: () => void): void {
  socket.cork();
  write();
  setImmediate(() => socket.uncork());
}

/** One POST: only its status matters; the answer's body is read and dropped. */
class SinkPost implements Dispatcher.DispatchHandler {
  readonly result: Promise<SendResult>;
  private resolve!: (result: SendResult) => void;
  private status = 0;
  private settled = false;
  private controller: DispatchController | undefined;

  /** `answered`: told of every answer (the connection's keep-alive check). */
  constructor(private readonly answered: () => void) {
    this.result = new Promise((resolve) => (this.resolve = resolve));
  }

  refused(): void {
    this.settle('rejected');
  }

  timeOut(): void {
    if (this.settled) return;
    this.controller?.abort(new Error(TIMED_OUT));
    // Not started yet (waiting for a connection): it ends here all the same.
    this.settle('timeout');
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
    this.answered();
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
