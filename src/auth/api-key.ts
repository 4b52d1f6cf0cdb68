import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

export function keyDigest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

/** What logs show instead of a key: the first 8 hex digits of its SHA-256. */
export function keyId(key: string): string {
  return keyDigest(key).toString('hex').slice(0, 8);
}

/** The credential of `Authorization: Bearer <credential>`, if any. */
export function bearerCredential(
  headers: IncomingHttpHeaders,
): string | undefined {
  return BEARER.exec(headers.authorization ?? '')?.[1];
}

/** Three base64url parts (a JWS in compact form; the last may be empty): a JWT, not an API key. */
export function looksLikeJwt(credential: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(credential);
}

/** The key a client presents: `Authorization: Bearer <key>`, else `X-API-Key`. */
export function presentedKey(headers: IncomingHttpHeaders): string | undefined {
  const bearer = bearerCredential(headers);
  if (bearer) return bearer;
  const header = headers['x-api-key'];
  return typeof header === 'string' && header.trim()
    ? header.trim()
    : undefined;
}

/**
 * Compares the presented key's digest (a key is hashed first) with
 * `timingSafeEqual` against every entry's, without stopping at a match: the
 * time taken tells nothing about the key or which entry matched.
 */
export function matchKey<T extends { digest: Buffer }>(
  presented: string | Buffer,
  entries: readonly T[],
): T | undefined {
  const digest =
    typeof presented === 'string' ? keyDigest(presented) : presented;
  let found: T | undefined;
  for (const entry of entries) {
    const equal = timingSafeEqual(digest, entry.digest);
    if (equal && found === undefined) found = entry;
  }
  return found;
}
