import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * RFC 9110 §7.6.1 hop-by-hop headers, plus `host`, which the client sets per
 * hop, and `expect`: the gateway answers 100-continue itself and has the whole
 * body before it calls a backend.
 */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'expect',
]);

/** Copies headers minus hop-by-hop ones and those named by `Connection`. */
export function endToEndHeaders(
  headers: IncomingHttpHeaders,
): Record<string, string | string[]> {
  const named = connectionTokens(headers.connection);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name))
      continue;
    if (name.startsWith('proxy-')) continue;
    out[name] = value;
  }
  return out;
}

export interface ForwardedFor {
  /** Drop Authorization and X-API-Key (the gateway's own API keys are on). */
  stripCredentials?: boolean;
  /** Drop headers with `_` in their name (HEADERS_WITH_UNDERSCORES=drop, as nginx). */
  dropUnderscoreHeaders?: boolean;
  clientIp: string | undefined;
  proto: string;
  host: string | undefined;
  requestId: string;
}

/**
 * Headers for the backend request, in one pass: end-to-end ones (hop-by-hop
 * and `Connection`-named ones removed first, so a client cannot hide its own
 * X-Forwarded-For behind them), then X-Forwarded-*, the request id. The
 * client's X-Forwarded-For is kept with the client appended; its
 * X-Forwarded-Host and -Proto never pass (Host, when it sent one, becomes
 * X-Forwarded-Host).
 */
export function backendRequestHeaders(
  headers: IncomingHttpHeaders,
  forwarded: ForwardedFor,
): OutgoingHttpHeaders {
  const named = connectionTokens(headers.connection);
  const { stripCredentials, dropUnderscoreHeaders } = forwarded;
  const out: OutgoingHttpHeaders = {};
  let prior: string | string[] | undefined;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name))
      continue;
    if (name.startsWith('proxy-')) continue;
    if (name === 'x-forwarded-for') {
      prior = value;
      continue;
    }
    // The gateway says who the client asked for (below), never the client.
    if (name === 'x-forwarded-host' || name === 'x-forwarded-proto') continue;
    if (stripCredentials && (name === 'authorization' || name === 'x-api-key'))
      continue;
    // A WSGI backend reads X_Forwarded_For as X-Forwarded-For.
    if (dropUnderscoreHeaders && name.includes('_')) continue;
    out[name] = value;
  }
  const client = forwarded.clientIp ?? 'unknown';
  out['x-forwarded-for'] = prior ? `${String(prior)}, ${client}` : client;
  out['x-forwarded-proto'] = forwarded.proto;
  if (forwarded.host) out['x-forwarded-host'] = forwarded.host;
  out['x-request-id'] = forwarded.requestId;
  return out;
}

function connectionTokens(value: string | undefined): Set<string> | undefined {
  if (!value) return undefined;
  return new Set(value.split(',').map((token) => token.trim().toLowerCase()));
}
