import type { CapturedBody } from './capture-body.js';
import type { HeldExchange } from './packed-exchange.js';

/** One of an exchange's two CloudEvents (both of a batch's pair share `held`). */
export interface CaptureEvent {
  readonly held: HeldExchange;
  readonly kind: 'request' | 'response';
}

/** How one event's delivery ended: `rejected` (a 4xx, a Redis error reply) is never retried. */
export type SendResult = 'delivered' | 'timeout' | 'error' | 'rejected';

/** Where events go: CloudEvents over HTTP, or a Redis stream. */
export interface CaptureSink {
  /** The `sink` label of the capture metrics. */
  readonly name: string;
  /** Exchanges per `send` at most. */
  readonly batchSize: number;
  /** `send` calls in flight at once at most. */
  readonly concurrency: number;
  /** How long the first exchange queued waits for company before a send (0: the next turn). */
  readonly lingerMs: number;
  /** Sends the events; one result per event, in order (never rejects). */
  send(events: readonly CaptureEvent[]): Promise<SendResult[]>;
  close(): Promise<void>;
}

/** ce-type, as KServe's inference logger has it. */
export const EVENT_TYPE = {
  request: 'org.kubeflow.serving.inference.request',
  response: 'org.kubeflow.serving.inference.response',
} as const;

/** The CloudEvents context of an event, as name/value pairs (no `ce-` prefix): required attributes first. */
export function eventAttributes(event: CaptureEvent): string[] {
  const { kind } = event;
  const exchange = event.held.exchange;
  const body = bodyOf(event);
  const pairs = [
    'specversion',
    '1.0',
    'id',
    exchange.id,
    'type',
    EVENT_TYPE[kind],
    'source',
    exchange.source,
    'time',
    kind === 'request' ? exchange.requestTime : exchange.responseTime,
  ];
  for (const name in exchange.attributes)
    pairs.push(name, exchange.attributes[name]);
  if (body.capture !== 'full') pairs.push('bodycapture', body.capture);
  if (body.capture !== 'full' && body.size !== undefined)
    pairs.push('bodysize', String(body.size));
  if (body.sha256 !== undefined) pairs.push('bodysha256', body.sha256);
  return pairs;
}

export function bodyOf(event: CaptureEvent): CapturedBody {
  const exchange = event.held.exchange;
  return event.kind === 'request' ? exchange.request : exchange.response;
}
