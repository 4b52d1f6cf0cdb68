/** The route label of a request no route matched (404s, client errors). */
export const UNMATCHED_ROUTE = 'unmatched';

/** The methods the gateway knows; any other counts as OTHER in metrics. */
export const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
] as const;

const KNOWN_METHODS = new Set<string>(HTTP_METHODS);

/** A method as a bounded label: one of HTTP_METHODS, else OTHER. */
export function methodLabel(method: string | undefined): string {
  return method !== undefined && KNOWN_METHODS.has(method) ? method : 'OTHER';
}

/** Probes and scrapes: logged at debug, never traced. */
const QUIET_PATHS = /^\/(health(\/|\?|$)|metrics(\?|$))/;

export function isQuietPath(url: string): boolean {
  return QUIET_PATHS.test(url);
}

/** The path of a request URL, without its query string. */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
