import type { FastifyReply, FastifyRequest } from 'fastify';
import { type Priority, rankOf } from '../common/priority.js';
import type { AttemptSpan, RequestState } from '../common/request-state.js';
import type { BackendAnswer } from '../proxy/backend-call.js';
import type { AnswerHook, AttemptObserver } from '../proxy/forwarding.js';
import type { BatchItem } from './batch-item.js';

/** The client side of an item: what its answer needs (a Prediction has it all). */
export interface BatchClient {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly state: RequestState;
  readonly observer: AttemptObserver | undefined;
  readonly onAnswer: AnswerHook | undefined;
}

export type Outcome = BackendAnswer | undefined;

/** One client's item, from its arrival to its answer. */
export class Entry {
  readonly arrivedAt = performance.now();
  taken = false;
  done = false;
  timer: NodeJS.Timeout | undefined;

  constructor(
    readonly client: BatchClient,
    readonly item: BatchItem,
    /** Sends this request alone, as is (the path without batching). */
    readonly alone: () => Promise<Outcome> | Outcome,
    readonly resolve: (outcome: Outcome) => void,
    readonly reject: (err: unknown) => void,
  ) {}

  /** Ends the item's wait; false when it had ended already. */
  end(): boolean {
    if (this.done) return false;
    this.done = true;
    clearTimeout(this.timer);
    return true;
  }
}

/** The batch's client span is the first item's; every other item's trace links to it. */
export function linkedObserver(
  batch: () => readonly Entry[] | undefined,
): AttemptObserver {
  return {
    attempt: (...args) => {
      const entries = batch() ?? [];
      const span: AttemptSpan | undefined =
        entries[0]?.client.observer?.attempt(...args);
      if (span)
        for (const entry of entries.slice(1))
          entry.client.state.trace?.link(span.traceId, span.spanId);
      return span;
    },
  };
}

/** A batch call waits in admission's queue as its most important item would. */
export function highest(entries: readonly Entry[]): Priority {
  let best: Priority = 'sheddable';
  for (const entry of entries)
    if (rankOf(entry.client.state.priority) < rankOf(best))
      best = entry.client.state.priority;
  return best;
}
