import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { Priority } from '../common/priority.js';
import type { RequestBody } from '../common/request-body.js';
import type { AttemptSpan, RequestState } from '../common/request-state.js';
import type { Backend } from './backend.js';
import type { BackendAnswer } from './backend-call.js';
import type { Cut } from './backend-errors.js';

/** The request as a backend gets it. */
export interface ForwardRequest {
  readonly method: string;
  /** The backend route plus the client's query (each backend adds its own path prefix). */
  readonly pathAndQuery: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: RequestBody | undefined;
}

/** Watches each attempt: tracing gives it a client span and the traceparent it sends. */
export interface AttemptObserver {
  attempt(
    headers: IncomingHttpHeaders,
    backend: Backend,
    path: string,
    attempt: number,
    retryReason: string | undefined,
  ): AttemptSpan | undefined;
}

/**
 * Takes a backend's answer (end-to-end headers only) before it is relayed;
 * for a streamed body it may hand back a stream to relay instead (one that
 * watches the bytes go by).
 */
export type AnswerHook = (
  status: number,
  headers: Record<string, string | string[]>,
  body: Buffer | Readable,
) => Promise<Readable | void>;

/**
 * The client side of a forwarding, as the prediction path hands it over with
 * the pool and the request to send: what the forwarder needs, nothing of the
 * features before it.
 */
export interface Forwarding {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly state: RequestState;
  /** The backend route (`/predict`, `/batch_predict`): a metric label. */
  readonly endpoint: string;
  readonly observer: AttemptObserver | undefined;
  readonly onAnswer: AnswerHook | undefined;
}

/**
 * Who an exchange's answer goes to: one client (relayed to it) or the
 * caller (a batch's answer, read whole). The retry loop is the same.
 */
export interface Recipient {
  readonly requestId: string;
  readonly endpoint: string;
  /** Its class in the admission queue. */
  readonly priority: Priority;
  readonly observer: AttemptObserver | undefined;
  /** The client's response ('close': it left); none for a batch. */
  readonly response: ServerResponse | undefined;
  /** An answer's head has gone out: nothing more can be said. */
  readonly answered: boolean;
  /** Notes the backend of the attempt now under way (for the access log). */
  startAttempt(backend: string): void;
  /** Notes each attempt's backend, status and round trip (for the access log). */
  noteAttempt(backend: string, status: number | 'error', ms: number): void;
  /** Takes the answer (relayed, or read whole); rejects when it breaks off. */
  deliver(
    answer: BackendAnswer,
    cut: () => Cut | undefined,
    tryExpired: () => boolean,
  ): Promise<void>;
}
