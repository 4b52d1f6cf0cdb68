import type { FastifyRequest } from 'fastify';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { RequestState } from '../common/request-state.js';
import { BodyCapturer } from './capture-body.js';
import type { CapturedExchange } from './packed-exchange.js';
import { SampledExchange } from './sampled-exchange.js';

// A context made after --expose-gc has `gc` on its global.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('a sampled exchange', () => {
  it('builds its events without holding the request (a request state that reached its request kept it from young-generation collection)', async () => {
    const built: CapturedExchange[] = [];
    const state = new RequestState('req-7');
    let request: FastifyRequest | undefined = {
      id: 'req-7',
      body: Buffer.from('{"request":{"text":"hi"}}'),
      headers: {
        'content-type': 'application/json',
        traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
      },
    } as unknown as FastifyRequest;
    state.capture = new SampledExchange(
      request,
      state,
      '/predict',
      new BodyCapturer(64 * 1024, []),
      (exchange) => built.push(exchange),
    );
    const gone = new WeakRef(request);
    request = undefined;
    // A WeakRef holds its target until the end of the turn that made it.
    await turn();
    gc();
    expect(gone.deref()).toBeUndefined();

    const exchange = state.capture as SampledExchange;
    exchange.answered(undefined);
    exchange.closed(200, 1.5);
    expect(built).toHaveLength(1);
    expect(built[0].id).toBe('req-7');
    expect(built[0].request.data?.toString()).toBe('{"request":{"text":"hi"}}');
    expect(built[0].request.contentType).toBe('application/json');
    expect(built[0].attributes).toMatchObject({
      endpoint: '/predict',
      status: '200',
      latencyms: '1.500',
      traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`,
    });
  });
});
