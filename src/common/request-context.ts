/**
 * Facts about one request that the proxy learns and the access log reports.
 * Kept on the raw Node request so the access-log line can read them
 * without a lookup.
 */
export interface GatewayRequestInfo {
  backend?: string;
  backendStatus?: number | 'error';
  backendDurationMs?: number;
}

declare module 'node:http' {
  interface IncomingMessage {
    gateway?: GatewayRequestInfo;
  }
}

export const UNMATCHED_ROUTE = 'unmatched';
