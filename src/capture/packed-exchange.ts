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
type Meta = [
  string,
  string,
  string,
  string,
  Record<string, string>,
  BodyMeta,
  BodyMeta,
];

/**
 * An exchange as the buffers hold it: its attributes as JSON, then its two
 * bodies, in bytes (written into each sink's ring: off the V8 heap, so
 * thousands of them waiting for a sink that is down cost their bytes and
 * nothing for the garbage collector).
 */
export class PackedExchange {
  readonly length: number;
  private readonly meta: string;
  private readonly metaLength: number;

  constructor(private readonly exchange: CapturedExchange) {
    const { request, response } = exchange;
    this.meta = JSON.stringify([
      exchange.id,
      exchange.source,
      exchange.requestTime,
      exchange.responseTime,
      exchange.attributes,
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
 * The exchange back from its bytes, its bodies copies of their own: what a
 * sink holds while it sends (a write still queued on a socket after a
 * timeout) never sees the ring reuse the space.
 */
export function unpack(packed: Buffer): CapturedExchange {
  const metaLength = packed.readUInt32LE(0);
  let at = 4 + metaLength;
  const meta = JSON.parse(packed.toString('utf8', 4, at)) as Meta;
  const body = ([capture, contentType, size, sha256, length]: BodyMeta) => {
    const data =
      length < 0 ? undefined : Buffer.from(packed.subarray(at, at + length));
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
    attributes: meta[4],
    request: body(meta[5]),
    response: body(meta[6]),
  };
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
