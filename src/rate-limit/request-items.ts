import type { FastifyRequest } from 'fastify';
import { valueAt, type Pointer } from '../common/json-pointer.js';
import type { RequestBody } from '../common/request-body.js';

/**
 * What a request costs in items: 1 for a `/predict`, the number of texts
 * (the array at `pointer`, `/request/texts` by default) for a
 * `/batch_predict`; 1 when that cannot be read (not JSON, compressed, no
 * such array).
 */
export function requestItems(
  request: FastifyRequest,
  endpoint: string,
  pointer: Pointer,
): number {
  if (endpoint !== '/batch_predict') return 1;
  const raw = request.body as RequestBody | undefined;
  if (raw === undefined || request.headers['content-encoding'] !== undefined)
    return 1;
  let document: unknown;
  try {
    document = JSON.parse(
      (Array.isArray(raw) ? Buffer.concat(raw) : raw).toString('utf8'),
    );
  } catch {
    return 1;
  }
  const items = valueAt(document, pointer);
  return Array.isArray(items) && items.length > 0 ? items.length : 1;
}
