import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { openRequestState } from './request-state.js';

export const REQUEST_ID_HEADER = 'x-request-id';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keeps a well-formed client id (1..128 chars of [A-Za-z0-9._:-]), otherwise makes a UUID v4. */
export function requestIdFor(header: string | string[] | undefined): string {
  return typeof header === 'string' && VALID_REQUEST_ID.test(header)
    ? header
    : randomUUID();
}

/**
 * Fastify's `genReqId`, the first code a request meets: the id every log
 * line, header and metric of the request uses, and the request's state.
 */
export function genReqId(req: IncomingMessage): string {
  return openRequestState(req, requestIdFor(req.headers[REQUEST_ID_HEADER]))
    .requestId;
}
