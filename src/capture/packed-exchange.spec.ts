import { BodyCapturer } from './capture-body.js';
import {
  type CapturedExchange,
  HeldExchange,
  PackedExchange,
} from './packed-exchange.js';

describe('packed exchanges', () => {
  it('come back as they went in, bodies and all, held as copies of their own', () => {
    const exchange: CapturedExchange = {
      id: 'req-1',
      source: 'api-gateway/models/sentiment',
      requestTime: '2026-01-01T00:00:00.000Z',
      responseTime: '2026-01-01T00:00:00.012Z',
      attributes: { endpoint: '/predict', status: '200', model: 'sentimént' },
      request: {
        capture: 'full',
        data: Buffer.from('{"request":{"text":"ünïcode"}}'),
        contentType: 'application/json',
        size: 31,
        sha256: undefined,
      },
      response: {
        capture: 'digest',
        data: undefined,
        contentType: undefined,
        size: 70_000,
        sha256: 'ab'.repeat(32),
      },
    };
    const packed = new PackedExchange(exchange);
    const ring = Buffer.alloc(packed.length + 10, 0xff);
    packed.writeTo(ring, 10);
    const back = new HeldExchange(Buffer.from(ring.subarray(10))).exchange;
    expect(back).toEqual(exchange);
    // Attributes keep their order (the Redis stream's fields follow it).
    expect(Object.keys(back.attributes)).toEqual([
      'endpoint',
      'status',
      'model',
    ]);
    // The body is a copy: the ring may reuse its bytes.
    ring.fill(0);
    expect(back.request.data?.toString()).toBe(
      '{"request":{"text":"ünïcode"}}',
    );
    const empty = {
      ...exchange,
      request: BodyCapturer.omitted(undefined, undefined),
    };
    const emptyPacked = new PackedExchange(empty);
    const target = Buffer.alloc(emptyPacked.length);
    emptyPacked.writeTo(target, 0);
    expect(new HeldExchange(target).exchange).toEqual(empty);
  });
});
