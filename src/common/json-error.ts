import { STATUS_CODES } from 'node:http';
import { REQUEST_ID_HEADER } from './request-id.js';
import { SECURITY_HEADERS } from './security-headers.js';

/** Longest error message: a short reason, never a backend's text or a long echo. */
const MAX_MESSAGE_LENGTH = 200;

/** The one JSON error shape of the gateway. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  /** A machine-readable reason when the status alone is not enough (e.g. `overloaded`). */
  code?: string;
  request_id: string;
}

export function errorBody(
  status: number,
  message: string,
  requestId: string,
  code?: string,
): ErrorBody {
  return {
    statusCode: status,
    error: STATUS_CODES[status] ?? 'Error',
    message: message.slice(0, MAX_MESSAGE_LENGTH),
    ...(code === undefined ? {} : { code }),
    request_id: requestId,
  };
}

/**
 * An error answer as the gateway writes it, whatever writes it (the
 * exception filter through Fastify, the client-error handler on a socket,
 * the metrics port through Node): the JSON body and its headers, the
 * request id and the security headers among them.
 */
export function errorAnswer(
  status: number,
  message: string,
  requestId: string,
  code?: string,
): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify(errorBody(status, message, requestId, code));
  return {
    body,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(body)),
      [REQUEST_ID_HEADER]: requestId,
      ...SECURITY_HEADERS,
    },
  };
}
