import type { FastifyRequest } from 'fastify';
import { isUtf8 } from 'node:buffer';
import { hash } from 'node:crypto';
import { bodyLength, type RequestBody } from '../common/request-body.js';
import { MODEL_HEADER, MODEL_VERSION_HEADER } from '../models/model-headers.js';
import { canonicalJson } from './canonical-json.js';

/** Largest JSON body canonicalised; a larger one is keyed by its bytes (bounded work). */
export const CANONICAL_MAX_BYTES = 64 * 1024;

/** What the gateway's own API key check takes from a request: never sent on, never keyed. */
const GATEWAY_CREDENTIALS = new Set(['authorization', 'x-api-key']);
const EMPTY = Buffer.alloc(0);

/**
 * The cache keys of requests: SHA-256 (one-shot, ~7x cheaper than a Hash
 * object) over what can change a backend's answer: the path and query, the
 * headers that choose a model, the body's Content-Type and
 * Content-Encoding, the client's key digest (CACHE_SCOPE=key with API keys
 * on), the credential headers that reach the backend (their values are
 * hashed, never stored), the CACHE_KEY_HEADERS values, and the body:
 * canonical JSON up to CANONICAL_MAX_BYTES, else its raw bytes.
 */
export class CacheKeys {
  /** The request headers every key holds: a Vary on any other one is not cached. */
  readonly keyed: ReadonlySet<string>;
  private readonly headers: readonly string[];

  constructor(
    keyHeaders: readonly string[],
    private readonly credentialHeaders: readonly string[],
    /** Bodies over this are not cached: their key would cost too much. */
    private readonly maxBodyBytes: number,
  ) {
    this.headers = [
      MODEL_HEADER,
      MODEL_VERSION_HEADER,
      'content-type',
      'content-encoding',
      ...keyHeaders,
    ];
    this.keyed = new Set([...this.headers, ...credentialHeaders]);
  }

  /** The key; undefined when the body is too large to be cached. */
  of(
    request: FastifyRequest,
    clientDigest: Buffer | undefined,
    gatewayChecked: boolean,
  ): string | undefined {
    const raw = request.body as RequestBody | undefined;
    const size = bodyLength(raw);
    if (size > this.maxBodyBytes) return undefined;
    // The path, not the route pattern: /models/a/predict and /models/b/predict
    // are two models.
    let input = `${request.url}\0`;
    for (const name of this.headers) input += headerPart(request, name);
    input += '\0';
    if (clientDigest) input += clientDigest.toString('base64');
    input += '\0';
    for (const name of this.credentialHeaders) {
      if (gatewayChecked && GATEWAY_CREDENTIALS.has(name)) continue;
      input += headerPart(request, name);
    }
    // A large body arrives as its chunks (see readRequestBody): joined here only.
    const body = Array.isArray(raw) ? Buffer.concat(raw, size) : (raw ?? EMPTY);
    const canonical =
      size <= CANONICAL_MAX_BYTES &&
      /json/i.test(request.headers['content-type'] ?? '') &&
      isUtf8(body)
        ? canonicalJson(body.toString('utf8'))
        : undefined;
    return canonical === undefined
      ? hash('sha256', Buffer.concat([Buffer.from(`${input}r`), body]), 'hex')
      : hash('sha256', `${input}j${canonical}`, 'hex');
  }
}

function headerPart(request: FastifyRequest, name: string): string {
  const value = request.headers[name];
  if (value === undefined) return '\0';
  return `${name}=${Array.isArray(value) ? value.join(',') : value}\0`;
}
