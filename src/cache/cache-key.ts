import type { FastifyRequest } from 'fastify';
import { isUtf8 } from 'node:buffer';
import { hash } from 'node:crypto';
import type { RequestBody } from '../common/request-body.js';
import { MODEL_HEADER, MODEL_VERSION_HEADER } from '../models/model-headers.js';
import { canonicalJson } from './canonical-json.js';

const MODEL_HEADERS = [MODEL_HEADER, MODEL_VERSION_HEADER];
const EMPTY = Buffer.alloc(0);

/**
 * The cache key of a request: SHA-256 over the path and query, the headers
 * that choose a model, the client's key digest (CACHE_SCOPE=key with API
 * keys on), the CACHE_KEY_HEADERS values, and the body: canonical JSON when
 * it is JSON, else its raw bytes. One-shot hash over one string (or
 * buffer): ~7x cheaper than a Hash object per request.
 */
export function cacheKey(
  request: FastifyRequest,
  keyHeaders: readonly string[],
  clientDigest: Buffer | undefined,
): string {
  // The path, not the route pattern: /models/a/predict and /models/b/predict
  // are two models. X-Model and X-Model-Version choose the model too.
  let input = `${request.url}\0`;
  for (const name of MODEL_HEADERS) {
    const value = request.headers[name];
    if (typeof value === 'string') input += `${name}=${value}`;
    input += '\0';
  }
  if (clientDigest) input += clientDigest.toString('base64');
  input += '\0';
  for (const name of keyHeaders) {
    const value = request.headers[name];
    input += `${name}=${Array.isArray(value) ? value.join(',') : (value ?? '')}\0`;
  }
  // A large body arrives as its chunks (see readRequestBody): joined here only.
  const raw = request.body as RequestBody | undefined;
  const body = Array.isArray(raw) ? Buffer.concat(raw) : (raw ?? EMPTY);
  const canonical =
    /json/i.test(request.headers['content-type'] ?? '') && isUtf8(body)
      ? canonicalJson(body.toString('utf8'))
      : undefined;
  return canonical === undefined
    ? hash('sha256', Buffer.concat([Buffer.from(`${input}r`), body]), 'hex')
    : hash('sha256', `${input}j${canonical}`, 'hex');
}
