import type { Gauge } from 'prom-client';
import type { BackendClient } from './backend-clients.service.js';

export type BackendState = 'healthy' | 'unhealthy' | 'ejected';

/** Outcome of one request to a backend, as passive outlier detection sees it. */
export type Outcome = 'success' | 'failure';

/** One backend URL of one pool, with what its pool knows of it. */
export interface Backend {
  readonly url: string;
  /** The URL's host, port and origin, parsed once (for client spans). */
  readonly address: string;
  readonly port: number;
  readonly origin: string;
  /** Its keep-alive connections, held for the pool's life. */
  readonly client: BackendClient;
  /** Active health: false after UNHEALTHY_THRESHOLD failed probes in a row. */
  healthy: boolean;
  /** Passive outlier detection: ejected until this time (ms since epoch), 0 when not. */
  ejectedUntil: number;
  ejections: number;
  /** Consecutive failed requests (transport error, timeout, 5xx). */
  failures: number;
  probeFailures: number;
  probeSuccesses: number;
  lastCheck: Date | null;
  lastStatus: number | null;
  lastError: string | null;
  inflight: number;
  /** This backend's in-flight gauge, resolved once (a label lookup per request adds up). */
  readonly inflightGauge: Gauge.Internal<string>;
}

export function newBackend(
  url: string,
  client: BackendClient,
  inflightGauge: Gauge.Internal<string>,
): Backend {
  const parsed = new URL(url);
  return {
    url,
    address: parsed.hostname,
    port: Number(parsed.port) || (parsed.protocol === 'https:' ? 443 : 80),
    origin: parsed.origin,
    client,
    healthy: true,
    ejectedUntil: 0,
    ejections: 0,
    failures: 0,
    probeFailures: 0,
    probeSuccesses: 0,
    lastCheck: null,
    lastStatus: null,
    lastError: null,
    inflight: 0,
    inflightGauge,
  };
}
