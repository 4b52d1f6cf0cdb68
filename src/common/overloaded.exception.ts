import { ServiceUnavailableException } from '@nestjs/common';

/**
 * 503 `overloaded`: refused before it cost a backend anything. The
 * exception filter writes `Retry-After` from `retryAfterSeconds`.
 */
export class OverloadedException extends ServiceUnavailableException {
  constructor(
    /** Why (a metric label): queue_full, queue_timeout, deadline, body_budget. */
    readonly reason: string,
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message, { errorCode: 'overloaded' });
  }
}
