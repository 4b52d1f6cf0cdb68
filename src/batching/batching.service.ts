import { Inject, Injectable } from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { FastifyRequest } from 'fastify';
import { backendConfig } from '../config/backend.config.js';
import {
  type BatchEndpoint,
  batchingConfig,
} from '../config/batching.config.js';
import { securityConfig } from '../config/security.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { BackendAnswer } from '../proxy/backend-call.js';
import type { BackendPool } from '../proxy/backend-pool.js';
import { ProxyService } from '../proxy/proxy.service.js';
import { type BatchItem, batchItem } from './batch-item.js';
import { BatchMetrics } from './batch-metrics.js';
import type { BatchClient } from './batch-entry.js';
import { Batcher, type BatcherOptions } from './batcher.js';
import { parsePointer, type Pointer } from '../common/json-pointer.js';

/** What the gateway's own API key check takes from a request: never sent on. */
const GATEWAY_CREDENTIALS = new Set(['authorization', 'x-api-key']);
/** Hop-by-hop: never sent on either. */
const NOT_FORWARDED = 'proxy-authorization';

/**
 * Micro-batching (BATCH_MAX_SIZE > 0): concurrent POST /predict calls for
 * one pool (one model version) go to the model's batch endpoint as one
 * call. A stage of the prediction path, after model routing and the
 * mirror: `handle` takes a request that can join a batch, or answers
 * undefined and the request goes on alone, as is.
 */
@Injectable()
export class BatchingService {
  readonly enabled: boolean;
  private readonly batchers = new WeakMap<BackendPool, Batcher>();
  private readonly parsed = new WeakMap<BatchEndpoint, ParsedEndpoint>();
  private readonly options: BatcherOptions | undefined;
  private readonly credentialHeaders: readonly string[];

  constructor(
    @Inject(batchingConfig.KEY)
    private readonly config: ConfigType<typeof batchingConfig>,
    @Inject(backendConfig.KEY) backend: ConfigType<typeof backendConfig>,
    @Inject(securityConfig.KEY) security: ConfigType<typeof securityConfig>,
    proxy: ProxyService,
    metrics: MetricsService,
  ) {
    this.enabled = config.maxSize > 0;
    this.credentialHeaders = security.credentialHeaders;
    if (!this.enabled) return;
    this.options = {
      proxy,
      metrics: new BatchMetrics(),
      shed: (reason, client) =>
        metrics.shed.labels(reason, client.state.priority).inc(),
      maxSize: config.maxSize,
      maxDelayMs: config.maxDelayMs,
      queueMax: Math.max(backend.queueMax, config.maxSize),
      timeoutMs: backend.timeoutMs,
      retryAfterSeconds: Math.max(1, Math.ceil(backend.queueTimeoutMs / 1000)),
    };
  }

  /** Items waiting for their batch to go, in every pool. */
  get waiting(): number {
    return this.options?.metrics.waiting ?? 0;
  }

  /**
   * Batches `client`'s request with others for `pool` (`endpoint`: its
   * version's batch endpoint, else the environment's); undefined when the
   * request cannot join a batch. `alone` sends it by itself, as is.
   * `stripCredentials`: the client's credentials were the gateway's own.
   */
  handle(
    client: BatchClient,
    pool: BackendPool,
    endpoint: BatchEndpoint | undefined,
    stripCredentials: boolean,
    alone: () => Promise<BackendAnswer | undefined> | undefined,
  ): Promise<BackendAnswer | undefined> | undefined {
    const route = this.parse(endpoint ?? this.config.endpoint);
    const item = this.itemOf(client.request, route.item, stripCredentials);
    if (!item) return undefined;
    let batcher = this.batchers.get(pool);
    if (batcher?.route !== route) {
      batcher = new Batcher(pool, route, this.options!);
      this.batchers.set(pool, batcher);
    }
    return batcher.add(client, item, alone);
  }

  /**
   * The item, unless a credential the backend would get rides with the
   * request: one batch call cannot carry several clients' credentials.
   */
  private itemOf(
    request: FastifyRequest,
    pointer: Pointer,
    stripCredentials: boolean,
  ): BatchItem | undefined {
    for (const name of this.credentialHeaders) {
      if (request.headers[name] === undefined || name === NOT_FORWARDED)
        continue;
      if (!(stripCredentials && GATEWAY_CREDENTIALS.has(name)))
        return undefined;
    }
    return batchItem(request, pointer);
  }

  private parse(endpoint: BatchEndpoint): ParsedEndpoint {
    let parsed = this.parsed.get(endpoint);
    if (!parsed) {
      parsed = {
        path: endpoint.path,
        item: parsePointer(endpoint.item),
        items: parsePointer(endpoint.items),
        results: parsePointer(endpoint.results),
      };
      this.parsed.set(endpoint, parsed);
    }
    return parsed;
  }
}

interface ParsedEndpoint {
  readonly path: string;
  readonly item: Pointer;
  readonly items: Pointer;
  readonly results: Pointer;
}
