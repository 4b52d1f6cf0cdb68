import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Pool } from './undici-pool.js';

/** One backend as the proxy dispatches to it. */
export interface BackendClient {
  /** Keep-alive connections to the backend's origin (undici: one Pool per origin). */
  readonly pool: Pool;
  /** The backend URL's own path (`http://host/v1` forwards /predict to /v1/predict). */
  readonly prefix: string;
}

interface Held extends BackendClient {
  holders: number;
}

/**
 * The proxy's HTTP clients: an undici `Pool` per backend URL, made when a
 * backend pool first needs it and closed when the last pool using it goes (a
 * routes file reload) or on shutdown. Pipelining stays off (one request per
 * connection at a time): a slow inference must not hold up the next one.
 */
@Injectable()
export class BackendClients implements OnApplicationShutdown {
  private readonly clients = new Map<string, Held>();

  /** The client for `url`, made on first use; pair each call with `release`. */
  acquire(url: string): BackendClient {
    let client = this.clients.get(url);
    if (!client) {
      const parsed = new URL(url);
      client = {
        pool: new Pool(parsed.origin, { pipelining: 1 }),
        prefix: parsed.pathname.replace(/\/+$/, ''),
        holders: 0,
      };
      this.clients.set(url, client);
    }
    client.holders++;
    return client;
  }

  /** Closes the client once no pool holds it; requests in flight finish first. */
  release(url: string): void {
    const client = this.clients.get(url);
    if (!client || --client.holders > 0) return;
    this.clients.delete(url);
    void client.pool.close();
  }

  async onApplicationShutdown(): Promise<void> {
    // By now the server has drained: what is left are idle keep-alive sockets.
    await Promise.all(
      [...this.clients.values()].map(({ pool }) => pool.destroy()),
    );
    this.clients.clear();
  }
}
