import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import './request-context.js';

export const REQUEST_ID_HEADER = 'x-request-id';

const VALID_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keeps a well-formed client id (1..128 chars of [A-Za-z0-9._:-]), otherwise makes a UUID v4. */
export function requestIdFor(header: string | string[] | undefined): string {
  return typeof header === 'string' && VALID_REQUEST_ID.test(header)
    ? header
    : randomUUID();
}

/** Fastify's `genReqId`: the id every log line, header and metric of the request uses. */
export function genReqId(req: IncomingMessage): string {
  const id = requestIdFor(req.headers[REQUEST_ID_HEADER]);
  // Kept on the raw request too, for answers written below Fastify (client errors).
  (req.gateway ??= {}).requestId = id;
  return id;
}
