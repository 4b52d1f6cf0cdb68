import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

type DispatchController = Parameters<
  NonNullable<Dispatcher.DispatchHandler['onRequestStart']>
>[0];
type ResponseHeaders = Parameters<
  NonNullable<Dispatcher.DispatchHandler['onResponseStart']>
>[2];

/** A backend's answer: small bodies read whole, larger or unsized ones as a stream. */
export interface BackendAnswer {
  status: number;
  headers: ResponseHeaders;
  body: Buffer | Readable;
}

/**
 * Chunked answers up to this size are read whole like sized ones: Node's
 * `writeHead` + `end`, Go's net/http past 4 KB and FastAPI's
 * StreamingResponse send a JSON prediction chunked, and a stream per answer
 * would cost ~25 % more CPU than a Buffer. Past it the answer streams.
 */
export const CHUNKED_HOLD_BYTES = 64 * 1024;

/** Answers that are streams by nature: relayed as they come, never held. */
const STREAMING_TYPES =
  /^\s*(?:text\/event-stream|application\/(?:x-ndjson|jsonl|x-jsonlines|stream\+json))\b/i;

/**
 * One request to one backend through undici's `dispatch`: no stream, promise
 * or AbortController is made unless the answer needs it. An answer with a
 * Content-Length up to `bufferLimit`, or a chunked one that ends within
 * CHUNKED_HOLD_BYTES, resolves once its body is read whole, so a backend
 * that stalls or resets mid-body still fails the attempt (and can be
 * retried); a larger one resolves at its head (or at the hold's end) and
 * streams, as does a streaming type (server-sent events, NDJSON).
 */
export class BackendCall implements Dispatcher.DispatchHandler {
  private controller: DispatchController | undefined;
  private abortReason: Error | undefined;
  private status = 0;
  private headers: ResponseHeaders = {};
  private chunks: Buffer[] = [];
  /** Bytes held of a chunked answer (-1: sized, never streamed past its limit). */
  private held = -1;
  private stream: Readable | undefined;
  private settled = false;
  private ended = false;

  constructor(
    private readonly bufferLimit: number,
    private readonly resolve: (answer: BackendAnswer) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  /** Cancels the call (deadline, client gone): fails it, or cuts its stream. */
  abort(reason: Error): void {
    if (this.controller) this.controller.abort(reason);
    else this.abortReason = reason;
  }

  onRequestStart(controller: DispatchController): void {
    this.controller = controller;
    if (this.abortReason) controller.abort(this.abortReason);
  }

  onResponseStart(
    controller: DispatchController,
    status: number,
    headers: ResponseHeaders,
  ): void {
    if (status < 200) return; // 1xx: the final answer follows
    this.status = status;
    this.headers = headers;
    const sized = headers['content-length'];
    if (sized !== undefined) {
      if (Number(sized) <= this.bufferLimit) return;
    } else if (!STREAMING_TYPES.test(String(headers['content-type']))) {
      this.held = 0;
      return;
    }
    this.startStream(controller);
  }

  private startStream(controller: DispatchController): void {
    const { status, headers } = this;
    this.stream = new Readable({
      read: () => controller.resume(),
      // Destroyed by its reader (the client left, a retry discards it): stop the download.
      destroy: (err, callback) => {
        if (!this.ended) controller.abort(err ?? new Error('answer discarded'));
        callback(err);
      },
    });
    this.settle({ status, headers, body: this.stream });
  }

  onResponseData(controller: DispatchController, chunk: Buffer): void {
    if (this.stream) {
      if (!this.stream.push(chunk)) controller.pause();
      return;
    }
    this.chunks.push(chunk);
    if (this.held < 0) return;
    this.held += chunk.length;
    if (this.held <= Math.min(CHUNKED_HOLD_BYTES, this.bufferLimit)) return;
    // Too long to hold: it streams from here, what was held first.
    this.startStream(controller);
    const held = this.chunks;
    this.chunks = [];
    let more = true;
    for (const c of held) more = this.stream!.push(c);
    if (!more) controller.pause();
  }

  onResponseEnd(): void {
    this.ended = true;
    if (this.stream) {
      this.stream.push(null);
      return;
    }
    const { chunks } = this;
    this.settle({
      status: this.status,
      headers: this.headers,
      body:
        chunks.length === 1
          ? chunks[0]
          : chunks.length === 0
            ? Buffer.alloc(0)
            : Buffer.concat(chunks),
    });
  }

  onResponseError(_controller: DispatchController, err: Error): void {
    this.ended = true;
    if (this.stream) this.stream.destroy(err);
    else if (!this.settled) {
      this.settled = true;
      this.reject(err);
    }
  }

  private settle(answer: BackendAnswer): void {
    this.settled = true;
    this.resolve(answer);
  }
}
