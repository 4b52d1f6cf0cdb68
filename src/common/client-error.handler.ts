import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import {
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { EarlyRejectOptions } from './early-reject.js';
import { errorAnswer } from './json-error.js';
import { currentResponse } from './node-internals.js';
import { REQUEST_ID_HEADER, requestIdFor } from './request-id.js';
import { methodLabel } from './request-labels.js';
import { rawRequestState } from './request-state.js';

/** Node's parser errors (llhttp codes) and timeouts, as status and a short reason. */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'request headers too large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request not received in time'],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, 'chunk extensions too large'],
  HPE_INVALID_METHOD: [400, 'malformed request line'],
  HPE_INVALID_URL: [400, 'malformed request line'],
  HPE_INVALID_VERSION: [400, 'malformed request line'],
  HPE_INVALID_CONSTANT: [400, 'malformed request line'],
  HPE_INVALID_CONTENT_LENGTH: [400, 'invalid Content-Length'],
  HPE_UNEXPECTED_CONTENT_LENGTH: [
    400,
    'conflicting Content-Length or Transfer-Encoding',
  ],
  HPE_INVALID_TRANSFER_ENCODING: [400, 'invalid Transfer-Encoding'],
  HPE_INVALID_CHUNK_SIZE: [400, 'malformed chunked body'],
  HPE_INVALID_HEADER_TOKEN: [400, 'malformed header'],
};

/** Sockets whose client error is answered or waiting for earlier answers. */
const answering = new WeakSet<Duplex>();
/**
 * How long an answered connection stays open for a client that is still
 * sending (nginx's lingering_close): closing at once would answer its next
 * bytes with a RST, and a RST can discard our answer before the client has
 * read it. It closes earlier when the client does.
 */
const LINGER_MS = 500;

/** Counts an answer the gateway made below Fastify (no route matched it). */
export type CountClientError = (method: string, status: number) => void;

/**
 * Answers what Node rejects before Fastify sees a request (malformed request
 * line, oversized or invalid headers, conflicting framing, header/request
 * timeouts) with the gateway's JSON error, a request id (the request's own
 * when the framing broke in its body, else a fresh one) and
 * `Connection: close`, and counts it. Requests pipelined before the bad bytes
 * are answered first, in order (RFC 9112 §9.3.2). Replaces Fastify's default
 * handler, whose body has no request id. Also: CONNECT gets a 405 instead of
 * a silent close; `Expect: 100-continue` with a Content-Length over
 * MAX_BODY_BYTES gets its 413 without a `100 Continue` first; any other
 * expectation gets a JSON 417. A first request line without a version and
 * a chunk size over MAX_BODY_BYTES are answered as soon as read
 * (`earlyRejects`, for watchEarlyRejects). The request pipeline installs
 * each listener.
 */
export class ClientErrorHandler {
  private readonly logger = new Logger('ClientError');

  constructor(
    private readonly server: Server,
    private readonly maxBodyBytes: number,
    private readonly count: CountClientError,
  ) {}

  /** Node's 'clientError': bytes it could not parse as a request. */
  readonly onClientError = (err: NodeJS.ErrnoException, socket: Duplex) => {
    // The peer is gone (reset, or closed mid-request): nothing to answer, and
    // a request in flight counts as 499.
    const gone =
      err.code === 'ECONNRESET' ||
      err.code === 'EPIPE' ||
      err.code === 'HPE_INVALID_EOF_STATE';
    // Answered already: more bad bytes wait for the lingering close.
    if (!gone && answering.has(socket)) return;
    if (gone || !socket.writable) {
      socket.destroy();
      return;
    }
    const [status, reason] = CLIENT_ERRORS[err.code ?? ''] ?? [
      400,
      'malformed request',
    ];
    this.answerOnce(socket, status, reason, err.code);
  };

  /** Node's 'connect': a CONNECT request, which a gateway does not tunnel. */
  readonly onConnect = (_req: IncomingMessage, socket: Duplex) => {
    this.answer(socket, 405, 'CONNECT is not supported', { method: 'CONNECT' });
  };

  /** Node's 'checkContinue': no 100 for a body over the limit, so the client never sends it. */
  readonly onCheckContinue = (req: IncomingMessage, res: ServerResponse) => {
    // Fastify answers the 413 from the Content-Length alone.
    if (!(Number(req.headers['content-length']) > this.maxBodyBytes))
      res.writeContinue();
    this.server.emit('request', req, res);
  };

  /** Node's 'checkExpectation': an Expect other than 100-continue. */
  readonly onCheckExpectation = (req: IncomingMessage, res: ServerResponse) => {
    const requestId = requestIdFor(req.headers[REQUEST_ID_HEADER]);
    const { body, headers } = this.errorJson(
      417,
      'unsupported Expect header',
      requestId,
      methodLabel(req.method),
    );
    res.writeHead(417, headers);
    res.end(body);
  };

  /** What watchEarlyRejects answers with. */
  get earlyRejects(): EarlyRejectOptions {
    return {
      maxBodyBytes: this.maxBodyBytes,
      rejectVersionless: (socket: Socket) =>
        this.answerOnce(socket, 400, 'HTTP/0.9 is not supported', 'HTTP_0_9'),
      rejectOversizedBody: (socket: Socket) =>
        this.answerOnce(
          socket,
          413,
          'Request body is too large',
          'CHUNK_SIZE_OVER_LIMIT',
        ),
      unavailable: () =>
        this.logger.warn(
          'Node parser hook not found: HTTP/0.9 lines and oversized chunk sizes wait for the timeouts',
        ),
    };
  }

  /** Node reports each later chunk of bytes again: one answer per connection. */
  private answerOnce(
    socket: Duplex,
    status: number,
    reason: string,
    code: string | undefined,
  ): void {
    if (answering.has(socket)) return;
    answering.add(socket);
    this.answerInTurn(socket, status, reason, code);
  }

  /**
   * Requests parsed whole before the error keep their answers: the error is
   * written after the last of them. A request whose own body broke is
   * answered at once, with its id.
   */
  private answerInTurn(
    socket: Duplex,
    status: number,
    reason: string,
    code: string | undefined,
  ): void {
    const inFlight = currentResponse(socket);
    if (!inFlight) {
      this.answer(socket, status, reason, { code });
      return;
    }
    const request = inFlight.req as IncomingMessage | undefined;
    if (request?.complete) {
      // Node hands the socket to the next queued answer before 'close'.
      inFlight.once('close', () =>
        this.answerInTurn(socket, status, reason, code),
      );
      return;
    }
    // If nothing was written yet we may still answer; the request's own
    // metrics/log count it.
    if (inFlight.headersSent) {
      socket.destroy();
      return;
    }
    const state = request ? rawRequestState(request) : undefined;
    if (state) state.cutStatus = status;
    this.answer(socket, status, reason, {
      code,
      requestId: state?.requestId,
      count: false,
    });
  }

  private answer(
    socket: Duplex,
    status: number,
    reason: string,
    {
      method = 'OTHER',
      code,
      requestId = randomUUID(),
      count = true,
    }: { method?: string; code?: string; requestId?: string; count?: boolean },
  ): void {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const { body, headers } = this.errorJson(
      status,
      reason,
      requestId,
      method,
      code,
      count,
    );
    headers.connection = 'close';
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n`;
    for (const name in headers) head += `${name}: ${headers[name]}\r\n`;
    // Whatever the client still sends is not read: the connection closes
    // once the answer is flushed (or after 1 s for a client that never reads).
    const cut = setTimeout(() => socket.destroy(), 1000);
    cut.unref();
    socket.end(head + '\r\n' + body, () => {
      clearTimeout(cut);
      setTimeout(() => socket.destroy(), LINGER_MS).unref();
    });
  }

  /** Counts and logs a client error; returns its answer. */
  private errorJson(
    status: number,
    reason: string,
    requestId: string,
    method: string,
    code?: string,
    count = true,
  ) {
    if (count) this.count(method, status);
    this.logger.warn(
      { request_id: requestId, status, error: code ?? reason },
      `client error: ${reason}`,
    );
    const answer = errorAnswer(status, reason, requestId);
    if (status === 405) answer.headers.allow = 'GET, HEAD, POST';
    return answer;
  }
}
