import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestTrace } from '../tracing/request-trace.js';

/**
 * Facts about one request that the proxy learns and the access log reports.
 * Kept on the raw Node request so the access-log line can read them
 * without a lookup.
 */
export interface GatewayRequestInfo {
  /** The request id (set by `genReqId`). */
  requestId?: string;
  backend?: string;
  backendStatus?: number | 'error';
  backendDurationMs?: number;
  /** With a routes file: the model and version that served the request. */
  model?: string;
  version?: string;
  /** Short id of the API key that authenticated the request (never the key). */
  keyId?: string;
  /** Response cache result: hit, miss, bypass or error (unset: cache off). */
  cache?: 'hit' | 'miss' | 'bypass' | 'error';
  /** The response cache's key, when CacheService.answerHitsEarly computed it. */
  cacheKey?: string;
  /** Body bytes of an answer written past Fastify (a cache hit): for the log. */
  bytes?: number;
  /**
   * Status to count when the response could not be finished by the gateway's
   * own choice: the client-error handler answered on the socket (4xx), or a
   * streamed answer was cut (502 backend reset, 504 stall). Unset: 499.
   */
  cutStatus?: number;
  /** The request's trace: set only when tracing is on (TracingHook). */
  trace?: RequestTrace;
}

declare module 'http' {
  interface IncomingMessage {
    gateway?: GatewayRequestInfo;
  }
}

export const UNMATCHED_ROUTE = 'unmatched';

/** The methods the gateway knows; any other counts as OTHER in metrics. */
export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
] as const;

/**
 * The status a finished exchange counts with: the one sent, 499 (nginx's
 * "client closed request") when the client left before the answer ended, or
 * the status the gateway gave when it cut the exchange itself (`cutStatus`).
 */
export function finalStatus(
  request: IncomingMessage,
  response: ServerResponse,
): number {
  if (response.writableFinished) return response.statusCode;
  return request.gateway?.cutStatus ?? 499;
}

/** The path of a request URL, without its query string. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
