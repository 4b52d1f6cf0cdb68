import type { IncomingHttpHeaders } from 'node:http';
import { keyDigest, matchKey, presentedKey } from '../auth/api-key.js';

/** The challenge sent with a 401 from either metrics endpoint. */
export const METRICS_CHALLENGE = 'Bearer realm="metrics"';

/**
 * METRICS_API_KEY: who may scrape, on the main port (MetricsAccessGuard) or
 * on METRICS_PORT (MetricsServer). Without a key, everyone may.
 */
export class MetricsAccess {
  private readonly keys: { digest: Buffer }[];

  constructor(metricsApiKey: string | undefined) {
    this.keys =
      metricsApiKey === undefined ? [] : [{ digest: keyDigest(metricsApiKey) }];
  }

  allows(headers: IncomingHttpHeaders): boolean {
    if (this.keys.length === 0) return true;
    const presented = presentedKey(headers);
    return (
      presented !== undefined && matchKey(presented, this.keys) !== undefined
    );
  }
}
