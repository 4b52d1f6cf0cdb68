import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { type HostPort, redisConfig } from '../config/redis.config.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { IOREDIS, type IoRedis } from './redis.constants.js';

/** Longest wait at boot for the first connection; past it the pod starts degraded. */
const BOOT_WAIT_MS = 1000;
/** Reconnect delay: 200 ms doubling to 2 s, with up to 20 % jitter. */
const retryDelay = (times: number) =>
  Math.round(Math.min(100 * 2 ** times, 2000) * (1 + Math.random() * 0.2));

/** A single Redis (REDIS_URL), a master found through Sentinel (REDIS_SENTINELS), or a Cluster (REDIS_CLUSTER_NODES). */
export type RedisClient = Redis | Cluster;

const list = (nodes: HostPort[]) =>
  nodes.map(({ host, port }) => `${host}:${port}`).join(',');

/**
 * The pod's one Redis connection, shared by every feature (no Redis
 * configured: `client` is null and features keep their state in memory).
 * Every feature uses only single-key commands and the one-key GCRA script,
 * so all of them work on a Cluster unchanged. Calls fail fast
 * instead of queueing: no offline queue, no retry of a command, each bounded
 * by REDIS_TIMEOUT_MS; the connection itself reconnects with backoff.
 */
@Injectable()
export class RedisService
  implements OnApplicationBootstrap, OnApplicationShutdown
{
  readonly client: RedisClient | null;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  private readonly logger = new Logger(RedisService.name);
  private lastError = '';
  private connected = false;
  private booted = false;

  constructor(
    @Inject(redisConfig.KEY) config: ConfigType<typeof redisConfig>,
    private readonly metrics: MetricsService,
    @Inject(IOREDIS) private readonly ioredis: IoRedis | null,
  ) {
    this.keyPrefix = config.keyPrefix;
    this.timeoutMs = config.timeoutMs;
    this.metrics.redisUp.set(0);
    this.client = ioredis && config.topology ? this.connect(config) : null;
  }

  /** Where the connection points, without credentials. */
  get target(): string | undefined {
    const client = this.client;
    if (!client) return undefined;
    if (client instanceof this.ioredis!.Cluster) {
      const nodes = client.nodes('master').map((node) => node.options);
      return `cluster ${nodes.length ? list(nodes as HostPort[]) : '(no node yet)'}`;
    }
    const { sentinels, name, host, port, db } = client.options;
    if (!sentinels) return `${host}:${port}/${db}`;
    const master = client.stream?.remoteAddress
      ? `${client.stream.remoteAddress}:${client.stream.remotePort}`
      : '(none yet)';
    return `sentinel ${name} master ${master}/${db}`;
  }

  get ready(): boolean {
    return this.client?.status === 'ready';
  }

  /** Counts a failed call (timeout, connection down, script error) by operation. */
  failed(op: string, err: unknown): void {
    this.metrics.redisErrors.labels(op).inc();
    this.logger.debug({ op, error: String(err) }, 'redis call failed');
  }

  async onApplicationBootstrap(): Promise<void> {
    const client = this.client;
    if (!client) return;
    if (!this.ready) {
      let done: () => void = () => undefined;
      const timer = setTimeout(() => done(), BOOT_WAIT_MS);
      await new Promise<void>((resolve) => {
        done = resolve;
        client.once('ready', resolve);
      });
      clearTimeout(timer);
      client.off('ready', done);
    }
    this.booted = true;
    if (this.ready) {
      this.logger.log(
        { redis: this.target },
        'redis connected: rate limits and cache shared by all replicas',
      );
    } else {
      this.logger.warn(
        { redis: this.target, error: this.lastError },
        'redis not reachable at boot: serving with per-request fallbacks, reconnecting in the background',
      );
    }
  }

  onApplicationShutdown(): void {
    this.client?.disconnect();
  }

  private connect(config: ConfigType<typeof redisConfig>): RedisClient {
    const topology = config.topology!;
    const node = {
      ...(config.username === undefined ? {} : { username: config.username }),
      ...(config.password === undefined ? {} : { password: config.password }),
      // Node's CA store: a private CA comes in with NODE_EXTRA_CA_CERTS.
      ...(config.tls ? { tls: {} } : {}),
      commandTimeout: config.timeoutMs,
      // A reply that never comes (a hung server, a dropped route) ends the socket.
      socketTimeout: Math.max(2000, config.timeoutMs * 10),
      connectTimeout: 2000,
      maxRetriesPerRequest: 0,
      connectionName: 'api-gateway',
    } satisfies RedisOptions;
    const single = {
      ...node,
      enableOfflineQueue: false,
      retryStrategy: retryDelay,
    } satisfies RedisOptions;
    const { Cluster, Redis } = this.ioredis!;
    let client: RedisClient;
    if (topology.kind === 'single') {
      client = new Redis(topology.url, single);
    } else if (topology.kind === 'sentinel') {
      client = new Redis({
        ...single,
        sentinels: topology.sentinels,
        name: topology.name,
        sentinelPassword: topology.sentinelPassword,
        ...(config.tls
          ? { enableTLSForSentinelMode: true, sentinelTLS: {} }
          : {}),
        sentinelRetryStrategy: retryDelay,
        sentinelCommandTimeout: 2000,
        // Subscribes to the sentinels' +switch-master: a failover moves the connection at once.
        failoverDetector: true,
      });
    } else {
      client = new Cluster(topology.nodes, {
        redisOptions: node,
        enableOfflineQueue: false,
        clusterRetryStrategy: retryDelay,
      });
      client.on('node error', (err: Error) => {
        this.lastError = err.message;
      });
    }
    client.on('ready', () => {
      this.connected = true;
      this.lastError = '';
      this.metrics.redisUp.set(1);
      if (this.booted)
        this.logger.log({ redis: this.target }, 'redis connected');
    });
    client.on('error', (err: Error) => {
      this.lastError = err.message;
    });
    client.on('close', () => {
      if (!this.connected) return;
      this.connected = false;
      this.metrics.redisUp.set(0);
      this.logger.warn(
        { redis: this.target, error: this.lastError || undefined },
        'redis connection lost: per-request fallbacks until it is back',
      );
    });
    return client;
  }
}
