/**
 * Headers on every answer the gateway makes itself (errors, `/`, health,
 * metrics): an API answer is never a page to frame, sniff or cache.
 * Relayed backend answers do not get them.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};
