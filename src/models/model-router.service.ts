import {
  Inject,
  Injectable,
  Logger,
  NotFoundException,
  OnModuleInit,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { RequestState } from '../common/request-state.js';
import {
  type BatchEndpoint,
  batchingConfig,
} from '../config/batching.config.js';
import { modelsConfig } from '../config/models.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import type { BackendPool } from '../proxy/backend-pool.js';
import { BackendPoolService } from '../proxy/backend-pool.service.js';
import { MODEL_VERSION_HEADER } from './model-headers.js';
import type { RoutesSpec } from './routes-file.js';
import { RoutesFileService } from './routes-file.service.js';
import { VersionMetrics } from './version-metrics.js';

export interface ModelVersion {
  readonly model: ModelRoute;
  readonly name: string;
  readonly pool: BackendPool;
  readonly weight: number;
  readonly series: VersionMetrics;
  /** Its batch endpoint: the routes file's `batching`, over BATCH_* (micro-batching). */
  readonly batching: BatchEndpoint;
}

export interface MirrorRoute {
  readonly name: string;
  readonly pool: BackendPool;
  readonly percent: number;
  readonly compare: readonly string[];
  readonly forwardCredentials: boolean;
  readonly series: VersionMetrics;
}

export interface ModelRoute {
  readonly name: string;
  readonly versions: readonly ModelVersion[];
  /** Upper bound of each version's share of [0, total weight). */
  readonly bounds: readonly number[];
  readonly totalWeight: number;
  /** Smooth weighted round robin's running score per version (nginx's). */
  readonly scores: number[];
  readonly mirror: MirrorRoute | undefined;
}

interface RoutingTable {
  readonly models: ReadonlyMap<string, ModelRoute>;
  readonly fallback: ModelRoute | undefined;
  readonly pools: ReadonlyMap<string, BackendPool>;
}

const EMPTY: RoutingTable = {
  models: new Map(),
  fallback: undefined,
  pools: new Map(),
};

/**
 * Model routing (ROUTES_FILE): the model a request names (path or X-Model,
 * else the default one), then its version: pinned by X-Model-Version, or
 * drawn by weight, from a hash of the client (STICKY_BY) so a client stays on
 * its version while the weights stand, and moves only if its share does.
 * Each version is its own BackendPool; a reload builds a new table at once,
 * keeping the pools (and their health) of versions whose URLs did not change.
 */
@Injectable()
export class ModelRouter implements OnModuleInit {
  /** False without ROUTES_FILE: BACKEND_URL(S) is the one implicit model. */
  readonly enabled: boolean;
  private table = EMPTY;
  private readonly series = new Map<string, VersionMetrics>();
  private readonly logger = new Logger(ModelRouter.name);
  private readonly stickyHeaders: readonly string[];

  constructor(
    private readonly routes: RoutesFileService,
    private readonly pools: BackendPoolService,
    private readonly metrics: MetricsService,
    @Inject(modelsConfig.KEY) config: ConfigType<typeof modelsConfig>,
    @Inject(batchingConfig.KEY)
    private readonly batchingDefaults: ConfigType<typeof batchingConfig>,
  ) {
    this.enabled = config.routesFile !== undefined;
    this.stickyHeaders =
      config.stickyBy === 'none'
        ? []
        : config.stickyBy === 'api_key'
          ? ['x-api-key', 'authorization']
          : [config.stickyBy];
  }

  onModuleInit(): void {
    const spec = this.routes.current();
    if (!spec) return;
    this.apply(spec, 'loaded');
    this.routes.events.on('change', (next) => this.apply(next, 'reloaded'));
  }

  /** The version that serves this request; 404 for an unknown model or version. */
  private route(
    request: FastifyRequest,
    modelName: string | undefined,
  ): ModelVersion {
    const { table } = this;
    const model =
      modelName === undefined ? table.fallback : table.models.get(modelName);
    if (!model) {
      throw new NotFoundException(
        modelName === undefined
          ? 'no default model: name one in the path (/models/{model}/predict) or in X-Model'
          : `unknown model ${JSON.stringify(modelName.slice(0, 64))}`,
      );
    }
    const pinned = request.headers[MODEL_VERSION_HEADER];
    if (typeof pinned === 'string') {
      const version = model.versions.find((v) => v.name === pinned);
      if (!version) {
        throw new NotFoundException(
          `unknown version ${JSON.stringify(pinned.slice(0, 64))} of model ${model.name}`,
        );
      }
      return version;
    }
    return this.draw(model, this.clientKey(request));
  }

  /**
   * The routing stage of the prediction path: the version that serves this
   * request, named in the answer's X-Model-Version and on its state (the
   * access log, and the version's metrics when the response closes).
   */
  choose(
    request: FastifyRequest,
    reply: FastifyReply,
    state: RequestState,
    modelName: string | undefined,
  ): ModelVersion {
    const version = this.route(request, modelName);
    reply.header(MODEL_VERSION_HEADER, version.name);
    state.model = version.model.name;
    state.version = version.name;
    state.versionMetrics = version.series;
    return version;
  }

  /**
   * By weight: a sticky client by the hash of its key (it moves only when its
   * point leaves its version's share), anyone else by smooth weighted round
   * robin, which keeps the split exact over any run of requests.
   */
  private draw(model: ModelRoute, key: string | undefined): ModelVersion {
    const { bounds, versions } = model;
    if (versions.length === 1) return versions[0];
    if (key !== undefined) {
      const point = hashUnit(key) * model.totalWeight;
      for (let i = 0; i < bounds.length; i++) {
        if (point < bounds[i]) return versions[i];
      }
      return versions[versions.length - 1];
    }
    const { scores } = model;
    let best = 0;
    for (let i = 0; i < versions.length; i++) {
      scores[i] += versions[i].weight;
      if (scores[i] > scores[best]) best = i;
    }
    scores[best] -= model.totalWeight;
    return versions[best];
  }

  private clientKey(request: FastifyRequest): string | undefined {
    for (const name of this.stickyHeaders) {
      const value = request.headers[name];
      if (typeof value === 'string' && value !== '') return value;
    }
    return undefined;
  }

  private apply(spec: RoutesSpec, verb: string): void {
    const previous = this.table;
    const pools = new Map<string, BackendPool>();
    const pool = (
      model: string,
      version: string,
      urls: readonly string[],
      mirror: boolean,
    ) => {
      const key = `${model}\0${version}\0${mirror}\0${urls.join('\0')}`;
      const made =
        pools.get(key) ??
        previous.pools.get(key) ??
        this.pools.create(urls, { model, version, mirror });
      pools.set(key, made);
      return made;
    };
    const live = new Set<string>();
    const series = (model: string, version: string, mirror = false) => {
      const key = `${model}\0${version}`;
      live.add(key);
      let found = this.series.get(key);
      if (!found) {
        found = new VersionMetrics(this.metrics, model, version, mirror);
        this.series.set(key, found);
      }
      return found;
    };
    const models = new Map<string, ModelRoute>();
    let fallback: ModelRoute | undefined;
    for (const [name, model] of Object.entries(spec.models)) {
      const versions: ModelVersion[] = [];
      const bounds: number[] = [];
      let totalWeight = 0;
      for (const { weight } of model.versions)
        bounds.push((totalWeight += weight));
      const { mirror } = model;
      const route: ModelRoute = {
        name,
        versions,
        bounds,
        totalWeight,
        scores: model.versions.map(() => 0),
        mirror: mirror && {
          name: mirror.name,
          pool: pool(name, mirror.name, mirror.urls, true),
          percent: mirror.percent,
          compare: mirror.compare,
          forwardCredentials: mirror.forwardCredentials,
          series: series(name, mirror.name, true),
        },
      };
      for (const v of model.versions) {
        versions.push({
          model: route,
          name: v.name,
          pool: pool(name, v.name, v.urls, false),
          weight: v.weight,
          batching: { ...this.batchingDefaults.endpoint, ...v.batching },
          series: series(name, v.name),
        });
      }
      models.set(name, route);
      if (model.default) fallback = route;
    }
    if (models.size === 1) fallback ??= [...models.values()][0];
    this.table = { models, fallback, pools };
    for (const [key, old] of previous.pools) {
      if (!pools.has(key)) this.pools.close(old);
    }
    for (const [key, old] of this.series) {
      if (live.has(key)) continue;
      old.remove();
      this.series.delete(key);
    }
    this.logger.log(
      {
        models: Object.fromEntries(
          [...models.values()].map((m) => [
            m.name,
            {
              versions: Object.fromEntries(
                m.versions.map((v) => [v.name, v.weight]),
              ),
              mirror: m.mirror
                ? { name: m.mirror.name, percent: m.mirror.percent }
                : undefined,
            },
          ]),
        ),
        default: fallback?.name,
      },
      `routes ${verb}`,
    );
  }
}

/** FNV-1a of the client key, as a number in [0, 1): the same client, the same point. */
function hashUnit(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  // A final avalanche: FNV-1a alone leaves the high bits of short keys clustered.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  return (hash >>> 0) / 0x1_0000_0000;
}
