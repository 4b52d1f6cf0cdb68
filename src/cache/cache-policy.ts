/** What a request's Cache-Control asks of the cache. */
export function requestDirective(
  value: string | undefined,
): 'no-store' | 'no-cache' | undefined {
  if (!value) return undefined;
  const directives = value.toLowerCase();
  if (/(^|,)\s*no-store\s*(,|$)/.test(directives)) return 'no-store';
  if (/(^|,)\s*no-cache\s*(,|$)/.test(directives)) return 'no-cache';
  return undefined;
}

/** The backend allows sharing it, and nothing in it depends on what the key leaves out. */
export function storable(headers: Record<string, string | string[]>): boolean {
  const control = String(headers['cache-control'] ?? '').toLowerCase();
  return (
    !/(^|,)\s*(no-store|private)\s*(,|=|$)/.test(control) &&
    headers['set-cookie'] === undefined &&
    headers['content-encoding'] === undefined &&
    String(headers.vary ?? '').trim() !== '*'
  );
}
