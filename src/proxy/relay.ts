import { BadGatewayException } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { Priority } from '../common/priority.js';
import { REQUEST_ID_HEADER } from '../common/request-id.js';
import type { BackendAnswer } from './backend-call.js';
import type { AttemptFailed, Cut } from './backend-errors.js';
import { endToEndHeaders } from './forward-headers.js';
import type { AttemptObserver, Forwarding, Recipient } from './forwarding.js';

/** A client: the answer is relayed to it, a Buffer at once, a stream as it comes. */
export class ClientRecipient implements Recipient {
  readonly requestId: string;
  readonly endpoint: string;
  readonly priority: Priority;
  readonly observer: AttemptObserver | undefined;
  readonly response: ServerResponse;

  constructor(private readonly client: Forwarding) {
    this.requestId = client.request.id;
    this.endpoint = client.endpoint;
    this.priority = client.state.priority;
    this.observer = client.observer;
    this.response = client.reply.raw;
  }

  get answered(): boolean {
    return this.client.reply.sent;
  }

  startAttempt(backend: string): void {
    this.client.state.backend = backend;
  }

  noteAttempt(backend: string, status: number | 'error', ms: number): void {
    const { state } = this.client;
    state.backend = backend;
    state.backendStatus = status;
    state.backendDurationMs = ms;
  }

  async deliver(
    answer: BackendAnswer,
    cut: () => Cut | undefined,
    tryExpired: () => boolean,
  ): Promise<void> {
    const { reply, request, state, onAnswer } = this.client;
    if (answer.body instanceof Readable) {
      // Once streaming, a backend failure can only cut the client's answer:
      // count it as the 502/504 it is, not as a client abort (499).
      answer.body.once('error', () => {
        const why = cut();
        if (why === 'client') return;
        state.cutStatus = why === 'timeout' || tryExpired() ? 504 : 502;
      });
    }
    reply.code(answer.status);
    const headers = endToEndHeaders(answer.headers);
    const body =
      (onAnswer && (await onAnswer(answer.status, headers, answer.body))) ||
      answer.body;
    for (const name in headers) reply.header(name, headers[name]);
    reply.header(REQUEST_ID_HEADER, request.id);
    state.relayed = true;
    await reply.send(body);
  }
}

/** The caller itself (a batch): the answer is read whole, up to `maxBytes`. */
export class CallerRecipient implements Recipient {
  readonly response = undefined;
  readonly answered = false;
  /** The answer, once delivered (its body read whole). */
  answer: (BackendAnswer & { body: Buffer }) | undefined;
  /** The last attempt's backend and round trip. */
  backend: string | undefined;
  durationMs = 0;

  constructor(
    readonly requestId: string,
    readonly endpoint: string,
    readonly observer: AttemptObserver | undefined,
    private readonly maxBytes: number,
    readonly priority: Priority,
  ) {}

  startAttempt(): void {}

  noteAttempt(backend: string, _status: number | 'error', ms: number): void {
    this.backend = backend;
    this.durationMs = ms;
  }

  async deliver(answer: BackendAnswer): Promise<void> {
    const body = Buffer.isBuffer(answer.body)
      ? answer.body
      : await readUpTo(answer.body, this.maxBytes);
    if (!body)
      throw new BadGatewayException(
        `backend answer over ${this.maxBytes} bytes`,
      );
    this.answer = { ...answer, body };
  }
}

/** The whole stream when it fits in `limit` bytes, else undefined. */
export async function readUpTo(
  stream: Readable,
  limit: number,
): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      stream.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Frees what a failed attempt still holds (a streamed answer not relayed). */
export function discard(failure: AttemptFailed | undefined): void {
  const body = failure?.answer?.body;
  if (body instanceof Readable) body.destroy();
}
