import {
  BadGatewayException,
  GatewayTimeoutException,
  HttpException,
} from '@nestjs/common';
import { UnavailableException } from '../common/unavailable.exception.js';
import type { BackendAnswer } from './backend-call.js';

// Every way a backend call can fail, and the answer each failure gives the
// client: the one place that maps backend errors.

export type FailureReason =
  'connect' | 'reset' | 'try_timeout' | 'timeout' | 'status';

/** Why the whole exchange was cut short: its deadline, or the client left. */
export type Cut = 'timeout' | 'client';

/** Why an attempt ended without an answer for the client. */
export class AttemptFailed extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
    /** A retryable 5xx answer, relayed if no other backend replaces it. */
    readonly answer?: BackendAnswer,
  ) {
    super(message);
  }
}

export const CLIENT_GONE = 'client closed the connection';
export const TRY_TIMEOUT = 'try timeout';
/** Statuses retried on another backend with RETRY_ON_5XX. */
export const RETRYABLE_STATUS = new Set([502, 503, 504]);

/** Failures before any response byte: the request can be replayed on another backend. */
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
]);

/** undici's codes for what Node's sockets call ECONNRESET and a connect ETIMEDOUT. */
const UNDICI_CODES: Record<string, string> = {
  UND_ERR_SOCKET: 'ECONNRESET',
  UND_ERR_CONNECT_TIMEOUT: 'ETIMEDOUT',
};

/** A short, safe reason for a failed backend call: the error code, never a stack. */
export function transportError(err: unknown): string {
  if (
    err &&
    typeof err === 'object' &&
    'code' in err &&
    typeof err.code === 'string'
  ) {
    return UNDICI_CODES[err.code] ?? err.code;
  }
  // undici names a malformed answer by its class, not always by an llhttp code.
  if (err instanceof Error && err.name === 'HTTPParserError') {
    return 'HPE_INVALID_RESPONSE';
  }
  return err instanceof Error ? err.message.slice(0, 120) : 'unknown error';
}

/** A failed call as the retry loop sees it. */
export function classify(
  err: unknown,
  cut: Cut | undefined,
  tryExpired: boolean,
): AttemptFailed {
  if (cut) {
    return new AttemptFailed(
      'timeout',
      cut === 'client' ? CLIENT_GONE : 'timeout',
    );
  }
  if (tryExpired) return new AttemptFailed('try_timeout', TRY_TIMEOUT);
  const code = transportError(err);
  return new AttemptFailed(
    CONNECT_ERRORS.has(code) ? 'connect' : 'reset',
    code,
  );
}

/**
 * Whether another backend may get the request. A failure to connect always;
 * once the backend may have started work, only with RETRY_ON_5XX (inference
 * is idempotent).
 */
export function retryable(err: AttemptFailed, retryOn5xx: boolean): boolean {
  if (err.reason === 'connect') return true;
  return (
    (err.reason === 'status' || err.reason === 'try_timeout') && retryOn5xx
  );
}

/**
 * The gateway's own answer when no backend answered: 503 with `Retry-After`
 * when none was available, 504 on a timeout, else 502.
 */
export function clientError(
  failure: AttemptFailed | undefined,
  noneAvailable: boolean,
  timeoutMs: number,
  retryAfterSeconds: number,
): HttpException {
  if (!failure || noneAvailable) {
    return new UnavailableException(
      failure
        ? `no backend is available (last error: ${failure.message})`
        : 'no backend is available',
      retryAfterSeconds,
    );
  }
  if (failure.reason === 'timeout' || failure.reason === 'try_timeout') {
    return new GatewayTimeoutException(
      `backend did not answer within ${timeoutMs} ms`,
    );
  }
  return new BadGatewayException(`backend unreachable (${failure.message})`);
}

/**
 * A backend's retryable status (502/503/504) as the gateway's own error,
 * for callers that cannot relay the answer itself (a batch's clients).
 */
export function statusError(status: number): HttpException {
  const message = `backend answered ${status}`;
  if (status === 504) return new GatewayTimeoutException(message);
  if (status === 503) return new UnavailableException(message, 1);
  return new BadGatewayException(message);
}
