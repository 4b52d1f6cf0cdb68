import type { ForwardRequest } from '../proxy/forwarding.js';
import type { BatchItem } from './batch-item.js';
import { documentWith, type Pointer, valueAt } from '../common/json-pointer.js';

/** A batch endpoint with its pointers parsed. */
export interface BatchRoute {
  readonly path: string;
  readonly items: Pointer;
  readonly results: Pointer;
}

/** The batch call: the items' texts at the endpoint's `items` pointer. */
export function batchRequest(
  route: BatchRoute,
  items: readonly BatchItem[],
  id: string,
): ForwardRequest {
  const texts = items.map((item) => item.text);
  return {
    method: 'POST',
    pathAndQuery: route.path,
    headers: { 'content-type': 'application/json', 'x-request-id': id },
    body: Buffer.from(JSON.stringify(documentWith(route.items, texts))),
  };
}

/** The results of a batch answer, in order (undefined: not an array there). */
export function resultsOf(
  body: Buffer,
  pointer: Pointer,
): unknown[] | undefined {
  try {
    const results = valueAt(JSON.parse(body.toString('utf8')), pointer);
    return Array.isArray(results) ? results : undefined;
  } catch {
    return undefined;
  }
}

/** A result as /predict answers: with `request_id` and `timestamp` when it lacks them. */
export function itemAnswer(result: unknown, item: BatchItem): unknown {
  if (result === null || typeof result !== 'object' || Array.isArray(result))
    return result;
  return {
    ...result,
    request_id:
      (result as Record<string, unknown>).request_id ?? item.requestId,
    timestamp:
      (result as Record<string, unknown>).timestamp ?? new Date().toISOString(),
  };
}
