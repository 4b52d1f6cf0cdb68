import type { FastifyRequest } from 'fastify';
import { bodyLength, type RequestBody } from '../common/request-body.js';
import type { Pointer } from '../common/json-pointer.js';

/** Largest body looked at for an item: a /predict body holds one text. */
const MAX_ITEM_BODY_BYTES = 64 * 1024;

/** The part of a /predict request a batch carries. */
export interface BatchItem {
  readonly text: string;
  /** `request_id` for its answer: the body's, when a string, else the request's id. */
  readonly requestId: string;
}

/**
 * The item of a request that can join a batch: no query string, a JSON
 * body holding a string at `pointer` (`/request/text`) and nothing else but,
 * beside it, an optional `request_id`. Undefined for anything else: it goes
 * alone, as is.
 */
export function batchItem(
  request: FastifyRequest,
  pointer: Pointer,
): BatchItem | undefined {
  if (!/json/i.test(request.headers['content-type'] ?? '')) return undefined;
  // A query string has no place in the batch call.
  if (request.url.includes('?')) return undefined;
  if (request.headers['content-encoding'] !== undefined) return undefined;
  const raw = request.body as RequestBody | undefined;
  if (raw === undefined || bodyLength(raw) > MAX_ITEM_BODY_BYTES)
    return undefined;
  let node: unknown;
  try {
    node = JSON.parse(
      (Array.isArray(raw) ? Buffer.concat(raw) : raw).toString('utf8'),
    );
  } catch {
    return undefined;
  }
  for (let i = 0; i < pointer.length; i++) {
    if (node === null || typeof node !== 'object' || Array.isArray(node))
      return undefined;
    const members = Object.keys(node);
    const last = i === pointer.length - 1;
    const allowed = (key: string) =>
      key === pointer[i] || (last && key === 'request_id');
    if (!Object.hasOwn(node, pointer[i]) || !members.every(allowed))
      return undefined;
    if (last) {
      const text = (node as Record<string, unknown>)[pointer[i]];
      if (typeof text !== 'string') return undefined;
      const id = (node as Record<string, unknown>).request_id;
      return { text, requestId: typeof id === 'string' ? id : request.id };
    }
    node = (node as Record<string, unknown>)[pointer[i]];
  }
  return undefined;
}
