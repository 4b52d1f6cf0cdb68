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
} from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * A lean axios adapter for the proxy's hot path: one `http.request` on the
 * configured keep-alive agent, the response handed back as the raw stream.
 * The default adapter spends most of the proxy's CPU on features a byte-for-
 * byte proxy never uses (redirects, decompression, progress, proxies, data
 * conversion); this keeps @nestjs/axios' injected HttpService and its
 * interceptors while skipping them. Errors keep Node's codes (ECONNREFUSED…).
 */
export const nodeHttpAdapter: AxiosAdapter = (
  config: InternalAxiosRequestConfig,
) =>
  new Promise<AxiosResponse>((resolve, reject) => {
    const url = new URL(config.url ?? '', config.baseURL);
    const secure = url.protocol === 'https:';
    const body = config.data as Buffer | string | undefined;
    const headers = config.headers.toJSON() as Record<string, string>;
    const req = (secure ? httpsRequest : httpRequest)(url, {
      method: config.method?.toUpperCase(),
      headers,
      agent: (secure ? config.httpsAgent : config.httpAgent) as
        Agent | undefined,
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
    req.end(body);
  });
