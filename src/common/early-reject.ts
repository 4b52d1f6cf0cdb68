import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { bodyStart, ChunkedFraming } from './chunked-framing.js';
import {
  currentResponse,
  type ExecuteHook,
  ParserHook,
} from './node-internals.js';

/** A request line ending in a version; anything else is HTTP/0.9 or garbage. */
const VERSIONED_LINE = / HTTP\/\d\.\d\r?$/;

/** What the watcher answers with (ClientErrorHandler's answers, logs and metrics). */
export interface EarlyRejectOptions {
  maxBodyBytes: number;
  /** A first request line without an HTTP version, no request yet: 400. */
  rejectVersionless(socket: Socket): void;
  /** The chunk sizes of the request in flight announce more than the limit: 413. */
  rejectOversizedBody(socket: Socket): void;
  /** Node's parser has no hook to watch (another Node version): the feature is off. */
  unavailable(): void;
}

/**
 * Answers two things Node's parser waits on silently, by looking at the bytes
 * it has just parsed, per connection and only while there is something to
 * watch (otherwise the parser's own callback is in place, untouched):
 * - the first request line of a connection without ` HTTP/x.y` (HTTP/0.9
 *   `GET /`, which Node would hold until the headers timeout);
 * - a chunked request whose chunk sizes announce more than MAX_BODY_BYTES
 *   (`7FFFFFFF`, which Node would wait on until the request timeout), from
 *   the read in which its headers completed to the end of its body. It acts
 *   only when the body's start is certain (`bodyStart`); else it lets it be.
 * Node reads sockets in C++: a `data` listener would take every connection
 * off that path at a cost on every request. When the parser is driven from
 * JavaScript instead (a consumed socket, another Node), the hook is never
 * called and the gateway behaves as without this.
 */
export function watchEarlyRejects(
  server: Server,
  options: EarlyRejectOptions,
): void {
  const watches = new WeakMap<Socket, ConnectionWatch>();
  let slot = -1;
  const onConnection = (socket: Socket) => {
    if (!ParserHook.hasParser(socket)) return;
    const hook = ParserHook.of(socket, slot);
    if (!hook) {
      server.off('connection', onConnection);
      server.off('request', onRequest);
      options.unavailable();
      return;
    }
    slot = hook.slot;
    watches.set(socket, new ConnectionWatch(socket, hook, options));
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const coding = req.headers['transfer-encoding'];
    if (coding === undefined || !CHUNKED.test(coding)) return;
    if (BODYLESS_METHODS.has(req.method ?? '')) return;
    watches.get(req.socket)?.armChunked(req, res);
  };
  server.on('connection', onConnection);
  // First: the hook must be in place before the read that holds the headers
  // has been handed to JavaScript in full.
  server.prependListener('request', onRequest);
}

const CHUNKED = /^[ \t]*chunked[ \t]*$/i;

/** Methods whose body Fastify never reads (so the limit does not apply). */
const BODYLESS_METHODS = new Set(['GET', 'HEAD', 'TRACE']);

interface ChunkedRequest {
  req: IncomingMessage;
  res: ServerResponse;
}

class ConnectionWatch {
  /** Row 9: the end of the first request line read so far; null once it is whole. */
  private firstLineTail: string | null = '';
  private firstRead = true;
  /** Row 8: chunked requests whose headers were parsed in this read, in order. */
  private arriving: ChunkedRequest[] = [];
  /** Row 8: the chunked request whose body is being followed. */
  private current: (ChunkedRequest & { framing: ChunkedFraming }) | null = null;

  constructor(
    private readonly socket: Socket,
    private readonly parser: ParserHook,
    private readonly options: EarlyRejectOptions,
  ) {
    parser.install(this.hook);
  }

  /** Called (synchronously, while Node parses a read) for a chunked request on this connection. */
  armChunked(req: IncomingMessage, res: ServerResponse): void {
    // The parser may serve another connection by now.
    if (!this.parser.current) return;
    // Never called back (a socket read from JavaScript): keep nothing.
    if (this.arriving.length >= 16) return;
    this.arriving.push({ req, res });
    this.parser.install(this.hook);
  }

  private readonly hook: ExecuteHook = (ret) => {
    const result = this.parser.original(ret);
    try {
      this.inspect(ret);
    } catch {
      this.stop();
    }
    this.firstRead = false;
    this.arriving.length = 0;
    if (this.firstLineTail === null && this.current === null) this.restore();
    return result;
  };

  private inspect(ret: unknown): void {
    // A parse error was answered by the client-error handler; an upgrade
    // took the socket; a short parse leaves the position unknown.
    if (!this.socket.writable || typeof ret !== 'number') return this.stop();
    const buf = this.parser.currentBuffer();
    if (ret !== buf.length) return this.stop();
    if (this.firstLineTail !== null) this.checkFirstLine(buf);
    if (this.current !== null || this.arriving.length > 0)
      this.followChunked(buf);
  }

  private checkFirstLine(buf: Buffer): void {
    let start = 0;
    if (this.firstLineTail === '') {
      // Empty lines before a request line are ignored (RFC 9112 §2.2).
      while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a))
        start++;
    }
    const lf = buf.indexOf(0x0a, start);
    const end = lf === -1 ? buf.length : lf;
    const tail = (
      this.firstLineTail + buf.toString('latin1', start, end)
    ).slice(-16);
    if (lf === -1) {
      this.firstLineTail = tail;
      return;
    }
    this.firstLineTail = null;
    // A request already handed over (`GET /\r\n\r\n`) is answered as one.
    if (!VERSIONED_LINE.test(tail) && !currentResponse(this.socket)) {
      this.stop();
      this.options.rejectVersionless(this.socket);
    }
  }

  /**
   * Follows the body in progress, then each chunked request that arrived in
   * this read: the first from the read's start (if its header section is
   * there, and only once in the read unless this is the connection's first
   * read), the next ones from where the previous body ended.
   */
  private followChunked(buf: Buffer): void {
    let at = 0;
    let known = this.firstRead;
    if (this.current !== null) {
      if (!this.advance(buf, 0)) return;
      at = this.current.framing.end;
      known = true;
    }
    for (const next of this.arriving) {
      const start = bodyStart(buf, next.req, at, !known);
      if (start === -1) break;
      this.current = {
        ...next,
        framing: new ChunkedFraming(this.options.maxBodyBytes),
      };
      if (!this.advance(buf, start)) return;
      at = this.current.framing.end;
      known = true;
    }
    this.current = null;
  }

  /** Feeds the current body; false while it goes on (or was answered or lost). */
  private advance(buf: Buffer, start: number): boolean {
    const current = this.current!;
    const verdict = current.framing.feed(buf, start);
    if (verdict === 'done') return true;
    if (verdict === 'more') return false;
    this.current = null;
    this.arriving.length = 0;
    const { res } = current;
    if (verdict === 'over' && !res.headersSent && !res.writableEnded)
      this.options.rejectOversizedBody(this.socket);
    return false;
  }

  private stop(): void {
    this.firstLineTail = null;
    this.arriving.length = 0;
    this.current = null;
  }

  private restore(): void {
    this.parser.restore(this.hook);
  }
}
