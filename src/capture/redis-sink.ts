import type { RedisClient } from '../redis/redis.service.js';
import {
  bodyOf,
  type CaptureEvent,
  type CaptureSink,
  eventAttributes,
  type SendResult,
} from './capture-event.js';

/** Error replies worth another try: the server is busy, loading, or failing over. */
const TRANSIENT_REPLY =
  /^(OOM|BUSY|LOADING|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|MOVED|ASK)\b/;

/**
 * A Redis stream over the gateway's shared connection (single, Sentinel or
 * Cluster: one key, so one slot): one entry per event, its CloudEvents
 * attributes as fields (`specversion`, `id`, `type`, `source`, `time`,
 * `datacontenttype`, the extensions) and the body as `data`; the stream
 * trimmed with `XADD … MAXLEN ~` (whole macro nodes, so it may hold a little
 * more). A batch of exchanges is one pipeline, each command bounded by
 * REDIS_TIMEOUT_MS; nothing is queued while the connection is down.
 */
export class RedisSink implements CaptureSink {
  readonly name = 'redis';
  readonly batchSize = 64;
  readonly concurrency = 2;
  readonly lingerMs = 20;
  private readonly maxLen: string;

  constructor(
    private readonly client: RedisClient,
    private readonly key: string,
    maxLen: number,
    private readonly failed: (err: unknown) => void,
  ) {
    this.maxLen = String(maxLen);
  }

  async send(events: readonly CaptureEvent[]): Promise<SendResult[]> {
    const pipeline = this.client.pipeline();
    for (const event of events) pipeline.xadd(this.key, ...this.entry(event));
    let replies: [Error | null, unknown][] | null;
    try {
      replies = await pipeline.exec();
    } catch (err) {
      this.failed(err);
      return events.map(() => resultOf(err));
    }
    let first: Error | undefined;
    const results = events.map((_, i): SendResult => {
      const err = replies?.[i]?.[0];
      if (err === null) return 'delivered';
      first ??= err ?? new Error('no reply');
      return err ? resultOf(err) : 'error';
    });
    // One count per batch (gateway_redis_errors_total{op="capture"}), not per event.
    if (first) this.failed(first);
    return results;
  }

  /** The shared connection is RedisService's to close. */
  close(): Promise<void> {
    return Promise.resolve();
  }

  private entry(event: CaptureEvent): (string | Buffer)[] {
    const body = bodyOf(event);
    const args: (string | Buffer)[] = ['MAXLEN', '~', this.maxLen, '*'];
    args.push(...eventAttributes(event));
    if (body.contentType !== undefined)
      args.push('datacontenttype', body.contentType);
    if (body.data !== undefined) args.push('data', body.data);
    return args;
  }
}

function resultOf(err: unknown): SendResult {
  if (!(err instanceof Error)) return 'error';
  if (/timed? ?out/i.test(err.message)) return 'timeout';
  if (err.name === 'ReplyError' && !TRANSIENT_REPLY.test(err.message))
    return 'rejected';
  return 'error';
}
