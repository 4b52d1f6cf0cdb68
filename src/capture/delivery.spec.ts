import type { CaptureEvent, CaptureSink, SendResult } from './capture-event.js';
import { CaptureMetrics } from './capture-metrics.js';
import { Delivery } from './delivery.js';
import { PackedExchange } from './packed-exchange.js';

const exchange = (id: string) =>
  new PackedExchange({
    id,
    source: 'api-gateway/models/default',
    requestTime: '2026-01-01T00:00:00.000Z',
    responseTime: '2026-01-01T00:00:00.010Z',
    attributes: { endpoint: '/predict', status: '200' },
    request: {
      capture: 'full',
      data: Buffer.from(`{"request":{"text":"${id}"}}`),
      contentType: 'application/json',
      size: undefined,
      sha256: undefined,
    },
    response: {
      capture: 'full',
      data: Buffer.from('{"sentiment":"POSITIVE"}'),
      contentType: 'application/json',
      size: undefined,
      sha256: undefined,
    },
  });

/** A sink that fails its first `failing` sends, and counts the sends in flight. */
class FlakySink implements CaptureSink {
  readonly name = 'test';
  readonly batchSize = 1;
  readonly concurrency = 4;
  readonly lingerMs = 0;
  inFlight = 0;
  sends = 0;
  /** Sends in flight at once, counted from the first failure on until the sink is back. */
  mostInFlightAfterFailure = 0;
  readonly delivered: string[] = [];
  readonly firstFailure: Promise<void>;
  private failed: (() => void) | undefined;

  constructor(private readonly failing: number) {
    this.firstFailure = new Promise((resolve) => (this.failed = resolve));
  }

  async send(events: readonly CaptureEvent[]): Promise<SendResult[]> {
    const up = ++this.sends > this.failing;
    this.inFlight++;
    if (!this.failed && !up)
      this.mostInFlightAfterFailure = Math.max(
        this.mostInFlightAfterFailure,
        this.inFlight,
      );
    await new Promise((resolve) => setImmediate(resolve));
    this.inFlight--;
    if (!up) {
      this.failed?.();
      this.failed = undefined;
      return events.map(() => 'error');
    }
    for (const event of events)
      if (event.kind === 'request') this.delivered.push(event.held.exchange.id);
    return events.map(() => 'delivered');
  }

  async close(): Promise<void> {}
}

describe('Delivery', () => {
  it('probes a failing sink with one send at a time, then drains with every worker once it is back', async () => {
    const sink = new FlakySink(8);
    const metrics = new CaptureMetrics(() => []);
    const delivery = new Delivery(sink, {
      maxBytes: 64 * 1024,
      batchBytes: 16 * 1024,
      retries: 0,
      backoffMs: 1,
      metrics,
    });
    for (let i = 0; i < 20; i++) delivery.offer(exchange(`x${i}`));
    await sink.firstFailure;
    // Offered while sends are failing: no worker may start and quit in a loop.
    delivery.offer(exchange('late'));
    await delivery.close(5000);
    // Four sends failed at once; from then on one probed until one got through.
    expect(sink.mostInFlightAfterFailure).toBe(1);
    expect(sink.delivered).toHaveLength(21 - 8);
    expect(sink.delivered).toContain('late');
    expect((await metrics.dropped.get()).values).toEqual([
      { labels: { reason: 'error' }, value: 16 },
    ]);
    expect(delivery.bytes).toBe(0);
    expect(delivery.events).toBe(0);
  });

  it("waits the sink's linger for company: exchanges offered over several turns go in one send", async () => {
    const { delivery, sends } = batchedDelivery(64, 50, 0);
    for (let i = 0; i < 5; i++) {
      delivery.offer(exchange(`t${i}`));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(sends).toEqual([]);
    await delivery.close(5000);
    expect(sends).toEqual([5]);
  });

  it('after a send, waits the linger again for less than a batch: a steady trickle goes in full sends', async () => {
    vi.useFakeTimers();
    try {
      const { delivery, sends } = batchedDelivery(8, 20, 5);
      // One exchange every 2 ms; a send takes 5 ms.
      for (let i = 0; i < 60; i++) {
        delivery.offer(exchange(`s${i}`));
        await vi.advanceTimersByTimeAsync(2);
      }
      const closed = delivery.close(5000);
      await vi.runAllTimersAsync();
      await closed;
      expect(sends.reduce((a, b) => a + b, 0)).toBe(60);
      // Full sends, but for what the shutdown found.
      expect(sends.slice(0, -1)).toEqual(sends.slice(0, -1).map(() => 8));
      expect(sends.length).toBeLessThanOrEqual(8);
    } finally {
      vi.useRealTimers();
    }
  });
});

/** A delivery to a sink taking `batchSize` exchanges a send, each send `sendMs` long; `sends` has their sizes (exchanges). */
function batchedDelivery(batchSize: number, lingerMs: number, sendMs: number) {
  const sends: number[] = [];
  const sink: CaptureSink = {
    name: 'batched',
    batchSize,
    concurrency: 1,
    lingerMs,
    send: async (events) => {
      sends.push(events.length / 2);
      if (sendMs > 0)
        await new Promise((resolve) => setTimeout(resolve, sendMs));
      return events.map((): SendResult => 'delivered');
    },
    close: () => Promise.resolve(),
  };
  const delivery = new Delivery(sink, {
    maxBytes: 64 * 1024,
    batchBytes: 16 * 1024,
    retries: 0,
    backoffMs: 1,
    metrics: new CaptureMetrics(() => []),
  });
  return { delivery, sends };
}
