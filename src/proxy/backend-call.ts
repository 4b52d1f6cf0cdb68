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
 * One request to one backend through undici's `dispatch`: no stream, promise
 * or AbortController is made unless the answer needs it. An answer with a
 * Content-Length up to `bufferLimit` resolves once its body is read whole, so
 * a backend that stalls or resets mid-body still fails the attempt (and can be
 * retried); a larger or chunked one resolves at its head and streams.
 */
export class BackendCall implements Dispatcher.DispatchHandler {
  private controller: DispatchController | undefined;
  private abortReason: Error | undefined;
  private status = 0;
  private headers: ResponseHeaders = {};
  private chunks: Buffer[] = [];
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
    const length = Number(headers['content-length']);
    if (Number.isFinite(length) && length <= this.bufferLimit) return;
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
    } else this.chunks.push(chunk);
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
