import {
  Inject,
  Injectable,
  Logger,
  OnApplicationShutdown,
} from '@nestjs/common';
import type { ConfigType } from '@nestjs/config';
import type { FastifyRequest } from 'fastify';
import { setFlagsFromString } from 'node:v8';
import type { Counter } from 'prom-client';
import type { RequestState } from '../common/request-state.js';
import { WatchedFile } from '../common/watched-file.js';
import { captureConfig, parseSinkHeaders } from '../config/capture.config.js';
import { ConfigValidationError, configError } from '../config/env.js';
import { RedisService } from '../redis/redis.service.js';
import { BodyCapturer } from './capture-body.js';
import type { CaptureSink } from './capture-event.js';
import { CaptureMetrics } from './capture-metrics.js';
import { CaptureSampler } from './capture-sampler.js';
import { Delivery } from './delivery.js';
import { HttpSink } from './http-sink.js';
import { RedisSink } from './redis-sink.js';
import { type CapturedExchange, PackedExchange } from './packed-exchange.js';
import { SampledExchange } from './sampled-exchange.js';

/** How often CAPTURE_HEADERS_FILE is checked for a new version. */
export const HEADERS_FILE_POLL_MS = 1000;
/** First retry's delay (doubling, up to 2 s). */
const BACKOFF_MS = 100;
/** Bytes of exchanges in one send at most (a Redis pipeline): what a send holds besides the buffer. */
const BATCH_BYTES = 256 * 1024;

/**
 * Inference capture (on when CAPTURE_SAMPLE_RATE > 0): a sampled share of
 * prediction exchanges, request and answer, as two CloudEvents each to an
 * HTTP receiver (CAPTURE_URL) and/or entries of a Redis stream
 * (CAPTURE_REDIS_STREAM). A stage of the prediction path, after access
 * checks and before the cache: `sample` decides up front; a sampled
 * exchange is built once its response has closed and delivered in the
 * background from a buffer bounded by CAPTURE_BUFFER_BYTES (shared by the
 * sinks): the client never waits for it, and what does not fit or cannot
 * be delivered is dropped and counted.
 */
@Injectable()
export class CaptureService implements OnApplicationShutdown {
  readonly enabled: boolean;
  private readonly logger = new Logger('Capture');
  private readonly sampler: CaptureSampler | undefined;
  private readonly bodies: BodyCapturer | undefined;
  private readonly deliveries: Delivery[] = [];
  private headersFile: WatchedFile<Record<string, string>> | undefined;
  /** Sampled exchanges not yet handed to the sinks (waiting for close, a shadow, a hash). */
  private building = 0;
  private sampledExchanges: Counter | undefined;

  constructor(
    @Inject(captureConfig.KEY)
    private readonly config: ConfigType<typeof captureConfig>,
    redis: RedisService,
  ) {
    this.enabled = config.sampleRate > 0;
    if (!this.enabled) return;
    // While capture holds requests a little longer (filling its buffer at a
    // high rate), V8 saw their allocation sites survive and began to
    // allocate the proxy's per-request objects straight into old space:
    // old-space collections every second instead of every eight, and p99
    // up 1.4x for good. Without allocation-site pretenuring they stay young.
    // Still needed since sampled requests no longer outlive their state
    // (request-state.ts): with the sink down at rate 1, 576 KB promoted per
    // scavenge without it, 65 KB with it.
    setFlagsFromString('--no-allocation-site-pretenuring');
    const sinks = this.sinks(redis);
    this.sampler = new CaptureSampler(config.sampleRate, config.sampleKey);
    this.bodies = new BodyCapturer(config.maxBodyBytes, config.redact);
    const metrics = new CaptureMetrics(() => this.deliveries);
    this.sampledExchanges = metrics.sampled;
    for (const sink of sinks)
      this.deliveries.push(
        new Delivery(sink, {
          // One share each: a sink that is down fills only its own.
          maxBytes: Math.floor(config.bufferBytes / sinks.length),
          batchBytes: BATCH_BYTES,
          retries: config.retries,
          backoffMs: BACKOFF_MS,
          metrics,
        }),
      );
    this.logger.log(
      {
        sample_rate: config.sampleRate,
        sample_key: config.sampleKey,
        sinks: sinks.map((sink) => sink.name),
        redact: config.redact,
      },
      'inference capture on',
    );
  }

  /** Nothing sampled is waiting to be built or delivered. */
  get idle(): boolean {
    return this.building === 0 && this.deliveries.every((d) => d.bytes === 0);
  }

  /**
   * The capture stage's decision: undefined for a request not sampled;
   * else its exchange, to be told the stages' outcome (the answer).
   */
  sample(
    request: FastifyRequest,
    state: RequestState,
    endpoint: string,
  ): SampledExchange | undefined {
    if (!this.sampler!.sampled(request.headers)) return undefined;
    this.sampledExchanges!.inc();
    // A sink that is down or hanging fills its buffer: from then on a
    // sampled request costs a comparison and a count, nothing more.
    if (!this.deliveries.some((d) => d.hasRoom)) {
      for (const delivery of this.deliveries) delivery.refuse();
      return undefined;
    }
    const exchange = new SampledExchange(
      request,
      state,
      endpoint,
      this.bodies!,
      this.offer,
    );
    state.capture = exchange;
    this.building++;
    return exchange;
  }

  /** Delivers what is buffered for up to CAPTURE_TIMEOUT_MS, then drops the rest (counted). */
  async onApplicationShutdown(): Promise<void> {
    this.headersFile?.close();
    await Promise.all(
      this.deliveries.map((d) => d.close(this.config.timeoutMs)),
    );
  }

  private readonly offer = (exchange: CapturedExchange): void => {
    this.building--;
    const packed = new PackedExchange(exchange);
    for (const delivery of this.deliveries) delivery.offer(packed);
  };

  private sinks(redis: RedisService): CaptureSink[] {
    const { config } = this;
    const sinks: CaptureSink[] = [];
    if (config.url) {
      const headers = this.sinkHeaders();
      sinks.push(new HttpSink(config.url, headers, config.timeoutMs));
    }
    if (config.redisStream) {
      if (!redis.client)
        throw configError(
          { CAPTURE_REDIS_STREAM: config.redisStream, REDIS_URL: undefined },
          'a Redis for the stream: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES',
        );
      sinks.push(
        new RedisSink(
          redis.client,
          redis.keyPrefix + config.redisStream,
          config.redisMaxLen,
          (err) => redis.failed('capture', err),
        ),
      );
    }
    return sinks;
  }

  /** CAPTURE_HEADERS, or CAPTURE_HEADERS_FILE kept current (a rotated token). */
  private sinkHeaders(): () => Readonly<Record<string, string>> {
    const path = this.config.headersFile;
    if (!path) {
      const headers = this.config.headers;
      return () => headers;
    }
    try {
      this.headersFile = new WatchedFile({
        path,
        parse: (text) => parseSinkHeaders(text, 'CAPTURE_HEADERS_FILE'),
        onChange: () =>
          this.logger.log({ file: path }, 'capture sink headers reloaded'),
        onRefused: (err) =>
          this.logger.warn(
            { file: path, error: String(err) },
            'capture sink headers file refused: the last good version stays',
          ),
        pollMs: HEADERS_FILE_POLL_MS,
      });
    } catch (err) {
      if (err instanceof ConfigValidationError) throw err;
      throw configError(
        { CAPTURE_HEADERS_FILE: path },
        `a readable file (${(err as Error).message})`,
      );
    }
    const file = this.headersFile;
    return () => file.current;
  }
}
