import { errorCodes } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { OverloadedException } from './unavailable.exception.js';
import type { RequestState } from './request-state.js';

/** A request body as it arrived: one Buffer, or its chunks in order (never copied). */
export type RequestBody = Buffer | Buffer[];

type Done = (err: Error | null, body?: RequestBody) => void;

/**
 * MAX_BUFFERED_BODY_BYTES: the request body bytes all requests together may
 * hold at once (a body is held from its first byte until its response
 * closes). A body that would go over it is refused at once with 503
 * `overloaded`, so memory stays bounded whatever the concurrency.
 */
export class BodyBudget {
  private held = 0;

  constructor(
    private readonly max: number,
    /** Counts a refusal (a metric). */
    private readonly refused: () => void,
  ) {}

  get bytes(): number {
    return this.held;
  }

  /** Takes `bytes` more for `state`'s body; false (counted) when they do not fit. */
  take(state: RequestState, bytes: number): boolean {
    if (this.held + bytes > this.max) {
      this.refused();
      return false;
    }
    this.held += bytes;
    state.bodyBytes += bytes;
    return true;
  }

  /** Gives back what `state`'s body holds (its response closed, or its read failed). */
  release(state: RequestState): void {
    this.held -= state.bodyBytes;
    state.bodyBytes = 0;
  }
}

/**
 * Fastify content-type parser for every type: reads the body as it came, up
 * to `limit` bytes (413 as soon as the limit is crossed or announced), and
 * checks it against Content-Length (400). Unlike `parseAs: 'buffer'` it keeps
 * the chunks as they are: a 2 MB batch is not copied into one new Buffer
 * (the copy and its garbage were half the CPU of a large request). The
 * bytes read are taken from `budget` (503 when it is spent).
 */
export function readRequestBody(
  payload: IncomingMessage,
  limit: number,
  budget: BodyBudget,
  state: RequestState,
  done: Done,
): void {
  const declared = Number(payload.headers['content-length']);
  if (declared > limit) {
    done(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
    return;
  }
  const chunks: Buffer[] = [];
  let received = 0;
  const fail = (err: Error) => {
    stop();
    budget.release(state);
    done(err);
  };
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (received > limit) {
      fail(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
      return;
    }
    if (!budget.take(state, chunk.length)) {
      fail(
        new OverloadedException(
          'body_budget',
          'overloaded: request bodies in flight are over MAX_BUFFERED_BODY_BYTES',
          1,
        ),
      );
      return;
    }
    chunks.push(chunk);
  };
  const onEnd = (err?: Error & { statusCode?: number }) => {
    stop();
    if (err) {
      budget.release(state);
      if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) {
        err.statusCode = 400;
      }
      done(err);
    } else if (!Number.isNaN(declared) && received !== declared) {
      budget.release(state);
      done(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
    } else {
      done(null, chunks.length === 1 ? chunks[0] : chunks);
    }
  };
  const stop = () => {
    payload.off('data', onData);
    payload.off('end', onEnd);
    payload.off('error', onEnd);
  };
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onEnd);
  payload.resume();
}

/** The body as undici sends it: a Buffer as is, chunks as a stream of themselves (never joined). */
export function dispatchBody(
  body: RequestBody | undefined,
): Buffer | Readable | undefined {
  return Array.isArray(body)
    ? Readable.from(body, { objectMode: false })
    : body;
}

/** The bytes of a body as read (0 for none). */
export function bodyLength(body: RequestBody | undefined): number {
  if (body === undefined) return 0;
  if (!Array.isArray(body)) return body.length;
  let size = 0;
  for (const chunk of body) size += chunk.length;
  return size;
}

/** The bytes of a request's body: as read, else as announced (for span attributes). */
export function requestBodySize(request: {
  body: unknown;
  headers: { 'content-length'?: string };
}): number | undefined {
  const body = request.body;
  if (Buffer.isBuffer(body) || Array.isArray(body))
    return bodyLength(body as RequestBody);
  const length = Number(request.headers['content-length']);
  return request.headers['content-length'] && Number.isInteger(length)
    ? length
    : undefined;
}
