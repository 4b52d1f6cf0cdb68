import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestState } from '../common/request-state.js';
import type { BatchEndpoint } from '../config/batching.config.js';
import type { MirrorRoute } from '../models/model-router.service.js';
import type { BackendAnswer } from '../proxy/backend-call.js';
import type { BackendPool } from '../proxy/backend-pool.js';
import type {
  AnswerHook,
  AttemptObserver,
  Forwarding,
  ForwardRequest,
} from '../proxy/forwarding.js';

/**
 * One prediction request as the stages of the prediction path see it: made
 * by the controller, filled in by the stages in turn, handed to the
 * forwarder last.
 */
export class Prediction implements Forwarding {
  /** The pool that serves it: BACKEND_URL(S), or the version the routing stage chose. */
  pool: BackendPool | undefined = undefined;
  /** The model's shadow, when the routing stage found one. */
  mirror: MirrorRoute | undefined = undefined;
  /** The version's batch endpoint (routes file), else BATCH_*'s. */
  batchEndpoint: BatchEndpoint | undefined = undefined;
  /** The request as the backends get it (made once, by the first stage that needs it). */
  outgoing: ForwardRequest | undefined = undefined;
  /** Takes the answer before it is relayed (the cache stage stores it). */
  onAnswer: AnswerHook | undefined = undefined;
  readonly observer: AttemptObserver | undefined;

  constructor(
    readonly request: FastifyRequest,
    readonly reply: FastifyReply,
    readonly state: RequestState,
    /** `/models/{model}/…`: the model the path names (else X-Model or the default). */
    readonly model: string | undefined,
    /** The backend route: `/predict` or `/batch_predict`. */
    readonly endpoint: string,
  ) {
    this.observer = state.trace;
  }
}

/** What a stage settles with: the backend answer the client got, if any. */
export type Outcome = Promise<BackendAnswer | undefined> | undefined;

/** The rest of the path after a stage. */
export type Next = (prediction: Prediction) => Outcome;

/**
 * One stage: does its part and calls `next` (or answers itself and does
 * not). A stage that needs no await returns `next(prediction)` as it is.
 */
export type Stage = (prediction: Prediction, next: Next) => Outcome;

/**
 * The stages as one function, built once at boot: each stage's `next` is
 * fixed then, so a request allocates nothing to run through them.
 */
export function compose(stages: readonly Stage[], last: Next): Next {
  let next = last;
  for (let i = stages.length - 1; i >= 0; i--) {
    const stage = stages[i];
    const rest = next;
    next = (prediction) => stage(prediction, rest);
  }
  return next;
}
