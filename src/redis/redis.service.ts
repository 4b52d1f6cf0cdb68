import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import { Redis } from 'ioredis';
import { redisConfig } from '../config/redis.config.js';
import { MetricsService } from '../metrics/metrics.service.js';

/** Longest wait at boot for the first connection; past it the pod starts degraded. */
const BOOT_WAIT_MS = 1000;
/** Reconnect delay: 200 ms doubling to 2 s, with up to 20 % jitter. */
const retryDelay = (times: number) =>
  Math.round(Math.min(100 * 2 ** times, 2000) * (1 + Math.random() * 0.2));

/**
 * The pod's one Redis connection, shared by every feature (REDIS_URL unset:
 * `client` is null and features keep their state in memory). Calls fail fast
 * instead of queueing: no offline queue, no retry of a command, each bounded
 * by REDIS_TIMEOUT_MS; the connection itself reconnects with backoff.
 */
@Injectable()
export class RedisService
  implements OnApplicationBootstrap, OnApplicationShutdown
{
  readonly client: Redis | null;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  private readonly logger = new Logger(RedisService.name);
  private lastError = '';
  private connected = false;
  private booted = false;

  constructor(
    @Inject(redisConfig.KEY) config: ConfigType<typeof redisConfig>,
    private readonly metrics: MetricsService,
  ) {
    this.keyPrefix = config.keyPrefix;
    this.timeoutMs = config.timeoutMs;
    this.metrics.redisUp.set(0);
    this.client = config.url === undefined ? null : this.connect(config);
  }

  /** Where the connection points, without credentials. */
  get target(): string | undefined {
    const options = this.client?.options;
    return options
      ? `${options.host}:${options.port}/${options.db}`
      : undefined;
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

  private connect(config: ConfigType<typeof redisConfig>): Redis {
    const client = new Redis(config.url!, {
      ...(config.password === undefined ? {} : { password: config.password }),
      commandTimeout: config.timeoutMs,
      // A reply that never comes (a hung server, a dropped route) ends the socket.
      socketTimeout: Math.max(2000, config.timeoutMs * 10),
      connectTimeout: 2000,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: retryDelay,
      connectionName: 'api-gateway',
    });
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
