import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { Pool } from 'undici';
import { backendConfig } from '../config/backend.config.js';

/** One backend as the proxy dispatches to it. */
export interface BackendClient {
  /** Keep-alive connections to the backend's origin (undici: one Pool per origin). */
  readonly pool: Pool;
  /** The backend URL's own path (`http://host/v1` forwards /predict to /v1/predict). */
  readonly prefix: string;
}

/**
 * The proxy's HTTP clients: an undici `Pool` per configured backend, made
 * once at boot and closed on shutdown. Pipelining stays off (one request per
 * connection at a time): a slow inference must not hold up the next one.
 */
@Injectable()
export class BackendClients implements OnApplicationShutdown {
  private readonly clients = new Map<string, BackendClient>();

  constructor(
    @Inject(backendConfig.KEY) config: ConfigType<typeof backendConfig>,
  ) {
    for (const url of config.urls) {
      const parsed = new URL(url);
      this.clients.set(url, {
        pool: new Pool(parsed.origin, { pipelining: 1 }),
        prefix: parsed.pathname.replace(/\/+$/, ''),
      });
    }
  }

  get(url: string): BackendClient {
    const client = this.clients.get(url);
    if (!client) throw new Error(`no client for backend ${url}`);
    return client;
  }

  async onApplicationShutdown(): Promise<void> {
    // By now the server has drained: what is left are idle keep-alive sockets.
    await Promise.all(
      [...this.clients.values()].map(({ pool }) => pool.destroy()),
    );
  }
}
