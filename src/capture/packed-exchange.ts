import type { BodyCapture, CapturedBody } from './capture-body.js';

/** Everything both events of a sampled exchange carry, ready for any sink. */
export interface CapturedExchange {
  /** ce-id of both events: the request id. */
  readonly id: string;
  readonly source: string;
  /** ce-time of the request event (its arrival) and of the response event (its end). */
  readonly requestTime: string;
  readonly responseTime: string;
  /** Extension attributes of both events (lower-case names, string values). */
  readonly attributes: Readonly<Record<string, string>>;
  readonly request: CapturedBody;
  readonly response: CapturedBody;
}

type BodyMeta = [
  BodyCapture,
  string | null,
  number | null,
  string | null,
  number,
];
/** Attributes as name/value pairs: their order survives a Lua table (redis-sink.ts reads this format too). */
type Meta = [string, string, string, string, string[], BodyMeta, BodyMeta];

/**
 * An exchange as the buffers hold it: a little-endian uint32, the length of
 * its JSON meta (id, source, times, attributes, each body's capture,
 * content type, size, SHA-256 and data length, -1 for none), the meta, then
 * the two bodies' bytes. Written into each sink's ring: off the V8 heap, so
 * thousands of them waiting for a sink that is down cost their bytes and
 * nothing for the garbage collector.
 */
export class PackedExchange {
  readonly length: number;
  private readonly meta: string;
  private readonly metaLength: number;

  constructor(private readonly exchange: CapturedExchange) {
    const { request, response, attributes } = exchange;
    const pairs: string[] = [];
    for (const name in attributes) pairs.push(name, attributes[name]);
    this.meta = JSON.stringify([
      exchange.id,
      exchange.source,
      exchange.requestTime,
      exchange.responseTime,
      pairs,
      bodyMeta(request),
      bodyMeta(response),
    ] satisfies Meta);
    this.metaLength = Buffer.byteLength(this.meta);
    this.length =
      4 +
      this.metaLength +
      (request.data?.length ?? 0) +
      (response.data?.length ?? 0);
  }

  writeTo(target: Buffer, at: number): void {
    const { request, response } = this.exchange;
    target.writeUInt32LE(this.metaLength, at);
    let to = at + 4 + target.write(this.meta, at + 4);
    if (request.data) to += request.data.copy(target, to);
    if (response.data) response.data.copy(target, to);
  }
}

/**
 * An exchange taken from a ring: a copy of its bytes (what a sink holds
 * while it sends, a write still queued on a socket after a timeout, say,
 * never sees the ring reuse the space), unpacked on first use: the Redis
 * sink sends the bytes as they are.
 */
export class HeldExchange {
  private unpacked: CapturedExchange | undefined;

  constructor(readonly packed: Buffer) {}

  get exchange(): CapturedExchange {
    return (this.unpacked ??= unpack(this.packed));
  }
}

/** The exchange back from its bytes (its bodies are views of them). */
function unpack(packed: Buffer): CapturedExchange {
  const metaLength = packed.readUInt32LE(0);
  let at = 4 + metaLength;
  const meta = JSON.parse(packed.toString('utf8', 4, at)) as Meta;
  const body = ([capture, contentType, size, sha256, length]: BodyMeta) => {
    const data = length < 0 ? undefined : packed.subarray(at, at + length);
    at += Math.max(length, 0);
    return {
      capture,
      data,
      contentType: contentType ?? undefined,
      size: size ?? undefined,
      sha256: sha256 ?? undefined,
    };
  };
  return {
    id: meta[0],
    source: meta[1],
    requestTime: meta[2],
    responseTime: meta[3],
    attributes: attributesOf(meta[4]),
    request: body(meta[5]),
    response: body(meta[6]),
  };
}

function attributesOf(pairs: string[]): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (let i = 0; i < pairs.length; i += 2) attributes[pairs[i]] = pairs[i + 1];
  return attributes;
}

function bodyMeta(body: CapturedBody): BodyMeta {
  return [
    body.capture,
    body.contentType ?? null,
    body.size ?? null,
    body.sha256 ?? null,
    body.data ? body.data.length : -1,
  ];
}
