import { HttpService } from '@nestjs/axios';
import {
  Inject,
  Injectable,
  OnApplicationBootstrap,
  OnModuleDestroy,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { backendConfig } from '../config/backend.config.js';
import { batchingConfig } from '../config/batching.config.js';
import { modelsConfig } from '../config/models.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { BackendClients } from './backend-clients.service.js';
import { BackendPool, type PoolDeps, type PoolLabels } from './backend-pool.js';

/** Calls per backend at once when batching is on and BACKEND_MAX_CONCURRENCY is 0. */
export const BATCHING_CONCURRENCY = 2;

/**
 * Makes and keeps the backend pools: the implicit one of BACKEND_URL(S) when
 * there is no routes file, else one per model version (and mirror). Pools
 * made after boot (a routes file reload) start probing at once. With
 * batching on, every pool has admission control: a batch goes when a slot
 * frees.
 */
@Injectable()
export class BackendPoolService
  implements OnApplicationBootstrap, OnModuleDestroy
{
  /** BACKEND_URL(S) as one pool; undefined when ROUTES_FILE names the pools. */
  readonly implicit: BackendPool | undefined;
  private readonly pools = new Set<BackendPool>();
  private readonly deps: PoolDeps;
  private running = false;

  constructor(
    @Inject(backendConfig.KEY) config: ConfigType<typeof backendConfig>,
    @Inject(modelsConfig.KEY) models: ConfigType<typeof modelsConfig>,
    @Inject(batchingConfig.KEY) batching: ConfigType<typeof batchingConfig>,
    http: HttpService,
    metrics: MetricsService,
    clients: BackendClients,
  ) {
    const maxConcurrency =
      config.maxConcurrency === 0 && batching.maxSize > 0
        ? BATCHING_CONCURRENCY
        : config.maxConcurrency;
    this.deps = {
      config: { ...config, maxConcurrency },
      http,
      metrics,
      clients,
    };
    if (models.routesFile === undefined)
      this.implicit = this.create(config.urls);
  }

  onApplicationBootstrap(): void {
    this.running = true;
    for (const pool of this.pools) pool.start();
  }

  onModuleDestroy(): void {
    this.running = false;
    for (const pool of this.pools) pool.stop();
  }

  create(urls: readonly string[], labels?: PoolLabels): BackendPool {
    const pool = new BackendPool(this.deps, urls, labels);
    this.pools.add(pool);
    if (this.running) pool.start();
    return pool;
  }

  /** Retires a pool no route uses any more: its probes stop, its series go. */
  close(pool: BackendPool): void {
    if (!this.pools.delete(pool)) return;
    const used = new Set(
      this.all().flatMap((p) => p.backends.map((b) => b.url)),
    );
    pool.close(
      new Set(pool.backends.map((b) => b.url).filter((url) => !used.has(url))),
    );
  }

  all(): BackendPool[] {
    return [...this.pools];
  }

  /** Resolves once every backend of every current pool has been probed. */
  probed(): Promise<unknown> {
    return Promise.all(this.all().map((pool) => pool.probed()));
  }
}
