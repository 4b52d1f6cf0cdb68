import type {
  AxiosAdapter,
  AxiosResponse,
  InternalAxiosRequestConfig,
  RawAxiosResponseHeaders,
} from 'axios';
import {
  request as httpRequest,
  type Agent,
  type IncomingMessage,
  type RequestOptions,
} from 'node:http';
import { request as httpsRequest } from 'node:https';

interface Origin {
  secure: boolean;
  /** The backend URL's own path (`http://host/v1` forwards /predict to /v1/predict). */
  prefix: string;
  options: Pick<RequestOptions, 'protocol' | 'hostname' | 'port'>;
}

/**
 * A lean axios adapter for the proxy's hot path: one `http.request` on the
 * configured keep-alive agent, the response handed back as the raw stream.
 * The default adapter spends most of the proxy's CPU on features a byte-for-
 * byte proxy never uses (redirects, decompression, progress, proxies, data
 * conversion); this keeps @nestjs/axios' injected HttpService and its
 * interceptors while skipping them. Errors keep Node's codes (ECONNREFUSED…).
 * A request names its backend in `baseURL` and its path in `url`; each
 * backend's address is parsed once.
 */
export function createNodeHttpAdapter(agents: {
  http: Agent;
  https: Agent;
}): AxiosAdapter & { destroy(): void } {
  const origins = new Map<string, Origin>();
  const originOf = (base: string): Origin => {
    let origin = origins.get(base);
    if (!origin) {
      const url = new URL(base);
      origin = {
        secure: url.protocol === 'https:',
        prefix: url.pathname.replace(/\/+$/, ''),
        options: {
          protocol: url.protocol,
          hostname: url.hostname,
          port: url.port,
        },
      };
      origins.set(base, origin);
    }
    return origin;
  };
  const adapter = (config: InternalAxiosRequestConfig) =>
    new Promise<AxiosResponse>((resolve, reject) => {
      const { secure, prefix, options } = originOf(config.baseURL ?? '');
      const req = (secure ? httpsRequest : httpRequest)({
        ...options,
        path: prefix + (config.url ?? ''),
        method: config.method?.toUpperCase(),
        headers: config.headers.toJSON() as Record<string, string>,
        agent: secure ? agents.https : agents.http,
        signal: config.signal as AbortSignal | undefined,
      });
      req.once('response', (res: IncomingMessage) => {
        resolve({
          data: res,
          status: res.statusCode ?? 0,
          statusText: res.statusMessage ?? '',
          headers: res.headers as RawAxiosResponseHeaders,
          config,
          request: req,
        });
      });
      req.once('error', reject);
      req.end(config.data as Buffer | string | undefined);
    });
  // Closes the pooled backend connections (shutdown).
  const destroy = () => {
    agents.http.destroy();
    agents.https.destroy();
  };
  return Object.assign(adapter, { destroy });
}

/** Closes the keep-alive connections of an adapter made by createNodeHttpAdapter. */
export function destroyAdapter(adapter: unknown): void {
  if (
    typeof adapter === 'function' &&
    'destroy' in adapter &&
    typeof adapter.destroy === 'function'
  ) {
    (adapter as { destroy(): void }).destroy();
  }
}
