import { ServiceUnavailableException } from '@nestjs/common';

/** 503 with `Retry-After` (the exception filter writes it from `retryAfterSeconds`). */
export class UnavailableException extends ServiceUnavailableException {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    errorCode?: string,
  ) {
    super(message, errorCode === undefined ? undefined : { errorCode });
  }
}

/** 503 `overloaded`: refused before it cost a backend anything. */
export class OverloadedException extends UnavailableException {
  constructor(
    /** Why (a metric label): queue_full, queue_timeout, deadline, body_budget. */
    readonly reason: string,
    message: string,
    retryAfterSeconds: number,
  ) {
    super(message, retryAfterSeconds, 'overloaded');
  }
}
