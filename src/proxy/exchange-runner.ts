import { Logger } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { OverloadedException } from '../common/unavailable.exception.js';
import type { backendConfig } from '../config/backend.config.js';
import type { Admission } from './admission.js';
import type { Backend } from './backend.js';
import { type BackendAnswer, BackendCall } from './backend-call.js';
import { dispatch } from './dispatch.js';
import {
  AttemptFailed,
  classify,
  clientError,
  RETRYABLE_STATUS,
  retryable,
  TRY_TIMEOUT,
} from './backend-errors.js';
import type { BackendPool } from './backend-pool.js';
import { Exchange, type Outgoing } from './exchange.js';
import type { Recipient } from './forwarding.js';
import { discard } from './relay.js';

/**
 * Runs one exchange with a pool: one deadline (BACKEND_TIMEOUT_MS) for all
 * attempts, cancellation when the client leaves, a slot per attempt when
 * the pool has admission control, and retries on another backend within
 * the retry budget. Whether the answer is relayed to a client or read for
 * the caller is the recipient's business.
 */
export class ExchangeRunner {
  private readonly logger = new Logger('ProxyService');

  constructor(
    private readonly config: ConfigType<typeof backendConfig>,
    private readonly maxBodyBytes: number,
  ) {}

  async run(
    recipient: Recipient,
    pool: BackendPool,
    outgoing: Outgoing,
  ): Promise<BackendAnswer | undefined> {
    const exchange = new Exchange(
      recipient,
      pool,
      outgoing,
      pool.admission ? performance.now() + this.config.timeoutMs : 0,
    );
    const deadline = setTimeout(
      () => exchange.cutShort('timeout'),
      this.config.timeoutMs,
    );
    const response = recipient.response;
    const onClose = () => {
      if (!response?.writableFinished) exchange.cutShort('client');
    };
    response?.once('close', onClose);
    try {
      return await this.withRetries(exchange);
    } finally {
      clearTimeout(deadline);
      response?.off('close', onClose);
    }
  }

  private async withRetries(
    exchange: Exchange,
  ): Promise<BackendAnswer | undefined> {
    const { pool, recipient } = exchange;
    pool.countRequest();
    let tried: Set<Backend> | undefined;
    let failure: AttemptFailed | undefined;
    for (let attempt = 0; attempt <= this.config.retryAttempts; attempt++) {
      // A retry needs a backend not tried yet, and the budget's yes at the
      // time of the failure (not after a wait for a slot).
      if (
        attempt > 0 &&
        (pool.candidates(tried).length === 0 || !pool.takeRetry())
      )
        break;
      const backend = pool.admission
        ? await this.admit(pool.admission, tried, exchange, attempt)
        : pool.pick(tried);
      if (!backend) break;
      if (!exchange.sent) {
        pool.admission?.release(backend);
        return undefined;
      }
      if (attempt > 0)
        pool.metrics.retry(recipient.endpoint, failure?.reason ?? 'unknown');
      try {
        return await this.attempt(backend, exchange, attempt, failure);
      } catch (err) {
        if (!(err instanceof AttemptFailed)) throw err;
        discard(failure);
        failure = err;
        if (
          exchange.cut ||
          recipient.answered ||
          !retryable(err, this.config.retryOn5xx)
        )
          break;
        (tried ??= new Set()).add(backend);
      }
    }
    // Nothing more can be said to a client that left or already has its answer's head.
    if (exchange.cut === 'client' || recipient.answered) {
      discard(failure);
      return undefined;
    }
    // A retryable 5xx that no other backend could replace is relayed as it came.
    if (failure?.answer) {
      await recipient.deliver(
        failure.answer,
        () => exchange.cut,
        () => false,
      );
      return failure.answer;
    }
    throw clientError(
      failure,
      pool.backends.length > 1 && pool.available().length === 0,
      this.config.timeoutMs,
      Math.ceil(this.config.healthCheckIntervalMs / 1000),
    );
  }

  /**
   * A backend with a slot held for this attempt (BACKEND_MAX_CONCURRENCY).
   * A first attempt that is shed answers 503 overloaded; a shed retry ends the
   * retries and the previous failure stands.
   */
  private async admit(
    admission: Admission,
    tried: ReadonlySet<Backend> | undefined,
    exchange: Exchange,
    attempt: number,
  ): Promise<Backend | undefined> {
    try {
      return await admission.acquire(tried, exchange, exchange.deadline);
    } catch (err) {
      if (err instanceof OverloadedException && attempt > 0) return undefined;
      throw err;
    }
  }

  /** One try on one backend, with its own timeout when BACKEND_TRY_TIMEOUT_MS is set. */
  private async attempt(
    backend: Backend,
    exchange: Exchange,
    attempt: number,
    previous: AttemptFailed | undefined,
  ): Promise<BackendAnswer> {
    const started = performance.now();
    const { recipient, pool } = exchange;
    const outgoing = exchange.sent!;
    recipient.startAttempt(backend.url);
    const path = backend.client.prefix + outgoing.pathAndQuery;
    const span = recipient.observer?.attempt(
      outgoing.headers,
      backend,
      path,
      attempt,
      previous?.reason,
    );
    pool.started(backend);
    let tryTimer: NodeJS.Timeout | undefined;
    let tryExpired = false;
    let status: number | 'error' = 'error';
    let failed: AttemptFailed | undefined;
    try {
      let answer: BackendAnswer;
      try {
        answer = await new Promise<BackendAnswer>((resolve, reject) => {
          const call = new BackendCall(this.maxBodyBytes, resolve, reject);
          exchange.call = call;
          if (this.config.tryTimeoutMs > 0) {
            tryTimer = setTimeout(() => {
              tryExpired = true;
              call.abort(new Error(TRY_TIMEOUT));
            }, this.config.tryTimeoutMs);
          }
          dispatch(backend, outgoing, call);
          if (exchange.cut) call.abort(new Error(exchange.cut));
        });
      } catch (err) {
        throw (failed = classify(err, exchange.cut, tryExpired));
      }
      status = answer.status;
      if (this.config.retryOn5xx && RETRYABLE_STATUS.has(status)) {
        throw (failed = new AttemptFailed(
          'status',
          `backend answered ${status}`,
          answer,
        ));
      }
      await recipient
        .deliver(
          answer,
          () => exchange.cut,
          () => tryExpired,
        )
        .catch((err: unknown) => {
          throw (failed = classify(err, exchange.cut, tryExpired));
        });
      return answer;
    } finally {
      clearTimeout(tryTimer);
      exchange.call = undefined;
      const seconds = (performance.now() - started) / 1000;
      const ok = !failed && typeof status === 'number' && status < 500;
      pool.finished(backend, ok ? 'success' : 'failure');
      // A timeout is latency too (a lower bound of it): only fast failures are not.
      const timedOut = !ok && !!failed?.reason.endsWith('timeout');
      pool.admission?.release(
        backend,
        ok || timedOut ? seconds * 1000 : undefined,
        timedOut,
      );
      pool.metrics
        .call(recipient.endpoint, status, backend.url)
        .record(seconds);
      recipient.noteAttempt(
        backend.url,
        status,
        Math.round(seconds * 1e6) / 1000,
      );
      span?.end(status, failed?.reason);
      if (failed && failed.reason !== 'status' && exchange.cut !== 'client') {
        this.logger.warn(
          {
            request_id: recipient.requestId,
            backend_url: backend.url,
            error: failed.message,
            reason: failed.reason,
            trace_id: span?.traceId,
            span_id: span?.spanId,
          },
          'backend request failed',
        );
      }
    }
  }
}
