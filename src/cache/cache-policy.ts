import type { IncomingHttpHeaders } from 'node:http';

/**
 * What a request asks of the cache (RFC 9111 §5.2.1): `no-store` (bypass);
 * `no-cache`, `max-age=0` or, without Cache-Control, `Pragma: no-cache`
 * (refresh: ask the backend, store its answer); `max-age=N` (an entry at
 * most N seconds old). Undefined: use any fresh entry.
 */
export type RequestDirective =
  | { kind: 'no-store' }
  | { kind: 'no-cache' }
  | { kind: 'max-age'; seconds: number };

export function requestDirective(
  headers: IncomingHttpHeaders,
): RequestDirective | undefined {
  const control = headers['cache-control'];
  if (control === undefined) {
    const pragma = headers.pragma;
    return pragma !== undefined && /(^|,)\s*no-cache\s*(,|$)/i.test(pragma)
      ? { kind: 'no-cache' }
      : undefined;
  }
  const directives = parseDirectives(control);
  if (directives.has('no-store')) return { kind: 'no-store' };
  if (directives.has('no-cache')) return { kind: 'no-cache' };
  const maxAge = seconds(directives.get('max-age'));
  if (maxAge === 0) return { kind: 'no-cache' };
  if (maxAge !== undefined) return { kind: 'max-age', seconds: maxAge };
  return undefined;
}

/**
 * How long a backend's answer may be reused, in ms, capped at `ttlMs`
 * (CACHE_TTL_SECONDS); 0: it must not be stored (RFC 9111 §3, §4.2.1).
 * Not stored: `no-store`, `private`, `no-cache`, `Pragma: no-cache`,
 * `Set-Cookie`, `Content-Encoding` (it would depend on Accept-Encoding),
 * a `Vary` on `*` or on a header the key leaves out, a freshness lifetime
 * of 0 (`s-maxage=0`, `max-age=0`, an `Expires` not after `Date`).
 * `keyed`: the request headers that are part of the key.
 */
export function freshnessMs(
  headers: Record<string, string | string[]>,
  ttlMs: number,
  keyed: ReadonlySet<string>,
  now = Date.now(),
): number {
  if (headers['set-cookie'] !== undefined) return 0;
  if (headers['content-encoding'] !== undefined) return 0;
  if (!varyKeyed(headers.vary, keyed)) return 0;
  const control = parseDirectives(headers['cache-control']);
  if (
    control.has('no-store') ||
    control.has('private') ||
    control.has('no-cache')
  )
    return 0;
  if (
    headers['cache-control'] === undefined &&
    /no-cache/i.test(String(headers.pragma ?? ''))
  )
    return 0;
  const age = (seconds(one(headers.age)) ?? 0) * 1000;
  const lifetime = lifetimeMs(headers, control, now);
  if (lifetime === undefined) return ttlMs;
  return Math.max(0, Math.min(ttlMs, lifetime - age));
}

/** s-maxage, else max-age, else Expires minus Date (RFC 9111 §4.2.1). */
function lifetimeMs(
  headers: Record<string, string | string[]>,
  control: Map<string, string | undefined>,
  now: number,
): number | undefined {
  const shared = seconds(control.get('s-maxage'));
  if (shared !== undefined) return shared * 1000;
  const maxAge = seconds(control.get('max-age'));
  if (maxAge !== undefined) return maxAge * 1000;
  const expires = one(headers.expires);
  if (expires === undefined) return undefined;
  // An invalid date (`0`, `-1`) means already expired.
  const at = Date.parse(expires);
  if (Number.isNaN(at)) return 0;
  const date = Date.parse(one(headers.date) ?? '');
  return at - (Number.isNaN(date) ? now : date);
}

/** Vary: every header it names is part of the key (Accept-Encoding too: a cached answer has no Content-Encoding). */
function varyKeyed(
  vary: string | string[] | undefined,
  keyed: ReadonlySet<string>,
): boolean {
  if (vary === undefined) return true;
  for (const name of String(vary).split(',')) {
    const header = name.trim().toLowerCase();
    if (header === '') continue;
    if (header === '*') return false;
    if (header !== 'accept-encoding' && !keyed.has(header)) return false;
  }
  return true;
}

function parseDirectives(
  value: string | string[] | undefined,
): Map<string, string | undefined> {
  const directives = new Map<string, string | undefined>();
  if (value === undefined) return directives;
  for (const part of String(value).split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (name === '') continue;
    const raw = eq === -1 ? undefined : part.slice(eq + 1).trim();
    directives.set(name, raw?.replace(/^"(.*)"$/, '$1'));
  }
  return directives;
}

/** A delta-seconds value (RFC 9111 §1.2.2); undefined when absent or invalid. */
function seconds(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Math.min(Number(value), 2 ** 31);
}

function one(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
