import type { Result } from 'ioredis';
import type { RedisClient } from '../redis/redis.service.js';
import {
  type CaptureEvent,
  type CaptureSink,
  EVENT_TYPE,
  type SendResult,
} from './capture-event.js';

/** Error replies worth another try: the server is busy, loading, or failing over. */
const TRANSIENT_REPLY =
  /^(OOM|BUSY|LOADING|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|READONLY|MOVED|ASK)\b/;

/**
 * Adds a batch of exchanges to the stream KEYS[1], each as it was packed
 * (packed-exchange.ts: uint32 LE meta length, JSON meta, bodies), so the
 * gateway spends nothing per event on building them: ARGV[1] is MAXLEN,
 * then per exchange which of its events to add (`both`, `request`,
 * `response`: a retry may carry one) and its bytes. The fields are those of
 * eventAttributes (capture-event.ts), in its order, then datacontenttype
 * and data; an e2e test holds the two to each other.
 */
const CAPTURE_ADD = `
local key, maxlen = KEYS[1], ARGV[1]
local null = cjson.null
local types = {'${EVENT_TYPE.request}', '${EVENT_TYPE.response}'}
for i = 2, #ARGV, 2 do
  local packed = ARGV[i + 1]
  local meta_length = struct.unpack('<I4', packed)
  local meta = cjson.decode(string.sub(packed, 5, 4 + meta_length))
  local at = 5 + meta_length
  for kind = 1, 2 do
    local body = meta[5 + kind]
    local f = {'specversion', '1.0', 'id', meta[1], 'type', types[kind], 'source', meta[2], 'time', meta[2 + kind]}
    for _, v in ipairs(meta[5]) do f[#f + 1] = v end
    if body[1] ~= 'full' then
      f[#f + 1] = 'bodycapture'; f[#f + 1] = body[1]
      if body[3] ~= null then f[#f + 1] = 'bodysize'; f[#f + 1] = tostring(body[3]) end
    end
    if body[4] ~= null then f[#f + 1] = 'bodysha256'; f[#f + 1] = body[4] end
    if body[2] ~= null then f[#f + 1] = 'datacontenttype'; f[#f + 1] = body[2] end
    if body[5] >= 0 then
      f[#f + 1] = 'data'; f[#f + 1] = string.sub(packed, at, at + body[5] - 1)
      at = at + body[5]
    end
    if ARGV[i] == 'both' or ARGV[i] == (kind == 1 and 'request' or 'response') then
      redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', unpack(f))
    end
  end
end
return (#ARGV - 1) / 2
`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    gatewayCaptureAdd(
      key: string,
      ...args: (string | Buffer)[]
    ): Result<number, Context>;
  }
}

/**
 * A Redis stream over the gateway's shared connection (single, Sentinel or
 * Cluster: one key, so one slot): one entry per event, its CloudEvents
 * attributes as fields (`specversion`, `id`, `type`, `source`, `time`, the
 * extensions, `datacontenttype`) and the body as `data`; the stream trimmed
 * with `XADD … MAXLEN ~` (whole macro nodes, so it may hold a little more).
 * A batch is one script call (EVALSHA; as for rate limits, the Redis user
 * needs EVAL/EVALSHA besides XADD), bounded by REDIS_TIMEOUT_MS; nothing is
 * queued while the connection is down. A batch fails or succeeds whole: a
 * script cut short by an error keeps the entries it added, so a retry may
 * add some twice (consumers see the same `id`).
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
    // ioredis sends EVALSHA, and EVAL once after a NOSCRIPT (a restarted Redis).
    client.defineCommand('gatewayCaptureAdd', {
      numberOfKeys: 1,
      lua: CAPTURE_ADD,
    });
  }

  async send(events: readonly CaptureEvent[]): Promise<SendResult[]> {
    const args: (string | Buffer)[] = [this.maxLen];
    for (let i = 0; i < events.length; i++) {
      const { held, kind } = events[i];
      if (events[i + 1]?.held === held) {
        args.push('both', held.packed);
        i++;
      } else args.push(kind, held.packed);
    }
    try {
      await this.client.gatewayCaptureAdd(this.key, ...args);
      return events.map(() => 'delivered');
    } catch (err) {
      // One count per batch (gateway_redis_errors_total{op="capture"}), not per event.
      this.failed(err);
      const result = resultOf(err);
      return events.map(() => result);
    }
  }

  /** The shared connection is RedisService's to close. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function resultOf(err: unknown): SendResult {
  if (!(err instanceof Error)) return 'error';
  if (/timed? ?out/i.test(err.message)) return 'timeout';
  if (err.name === 'ReplyError' && !TRANSIENT_REPLY.test(err.message))
    return 'rejected';
  return 'error';
}
