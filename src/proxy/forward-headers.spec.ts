import fc from 'fast-check';
import { backendRequestHeaders, endToEndHeaders } from './forward-headers.js';

const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
];

describe('endToEndHeaders', () => {
  it('drops hop-by-hop headers, Host, Proxy-* and those Connection names', () => {
    const out = endToEndHeaders({
      connection: 'keep-alive, X-Private',
      'keep-alive': 'timeout=5',
      'x-private': '1',
      te: 'trailers',
      'transfer-encoding': 'chunked',
      upgrade: 'websocket',
      host: 'gateway',
      'proxy-foo': 'bar',
      'content-type': 'application/json',
      traceparent: '00-abc-def-01',
      'set-cookie': ['a=1', 'b=2'],
    });
    expect(out).toEqual({
      'content-type': 'application/json',
      traceparent: '00-abc-def-01',
      'set-cookie': ['a=1', 'b=2'],
    });
  });

  it('never lets a hop-by-hop header through and keeps every end-to-end one (property)', () => {
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
    fc.assert(
      fc.property(
        fc.dictionary(name, fc.string({ maxLength: 20 })),
        fc.subarray(HOP_BY_HOP),
        (headers, hops) => {
          const input: Record<string, string> = { ...headers };
          for (const hop of hops) input[hop] = 'x';
          const named = (input.connection ?? '')
            .split(',')
            .map((t) => t.trim().toLowerCase());
          const out = endToEndHeaders(input);
          for (const hop of HOP_BY_HOP) expect(out).not.toHaveProperty(hop);
          for (const [key, value] of Object.entries(input)) {
            const dropped =
              HOP_BY_HOP.includes(key) ||
              named.includes(key) ||
              key.startsWith('proxy-');
            if (!dropped) expect(out[key]).toBe(value);
            else expect(out).not.toHaveProperty(key);
          }
        },
      ),
    );
  });
});

describe('backendRequestHeaders', () => {
  it('appends the client to X-Forwarded-For and sets proto, host and request id', () => {
    const out = backendRequestHeaders(
      {
        'x-forwarded-for': '198.51.100.1',
        host: 'api.example.com',
        'x-request-id': 'client-chosen',
      },
      {
        clientIp: '10.0.0.9',
        proto: 'https',
        host: 'api.example.com',
        requestId: 'validated-id',
      },
    );
    expect(out).toEqual({
      'x-forwarded-for': '198.51.100.1, 10.0.0.9',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'api.example.com',
      'x-request-id': 'validated-id',
    });
  });
});

describe('backendRequestHeaders: what the client cannot smuggle', () => {
  const forwarded = {
    clientIp: '10.0.0.9',
    proto: 'http',
    host: 'gw',
    requestId: 'id-1',
  };

  it('drops an X-Forwarded-For named in Connection before appending the client', () => {
    const out = backendRequestHeaders(
      {
        connection: 'keep-alive, X-Forwarded-For',
        'x-forwarded-for': '6.6.6.6',
      },
      forwarded,
    );
    expect(out['x-forwarded-for']).toBe('10.0.0.9');
  });

  it('drops headers with underscores when asked, keeps them otherwise', () => {
    const headers = { x_forwarded_for: '6.6.6.6', 'x-kept': '1' };
    expect(
      backendRequestHeaders(headers, {
        ...forwarded,
        dropUnderscoreHeaders: true,
      }),
    ).toEqual({
      'x-kept': '1',
      'x-forwarded-for': '10.0.0.9',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'gw',
      'x-request-id': 'id-1',
    });
    expect(backendRequestHeaders(headers, forwarded).x_forwarded_for).toBe(
      '6.6.6.6',
    );
  });

  it("never passes the client's X-Forwarded-Host or -Proto on", () => {
    const out = backendRequestHeaders(
      { 'x-forwarded-host': 'a b/c?d', 'x-forwarded-proto': 'gopher' },
      { ...forwarded, host: undefined },
    );
    expect(out).not.toHaveProperty('x-forwarded-host');
    expect(out['x-forwarded-proto']).toBe('http');
    expect(
      backendRequestHeaders({ 'x-forwarded-host': 'evil' }, forwarded)[
        'x-forwarded-host'
      ],
    ).toBe('gw');
  });

  it('drops the credentials when asked', () => {
    const out = backendRequestHeaders(
      { authorization: 'Bearer x', 'x-api-key': 'k', 'x-kept': '1' },
      { ...forwarded, stripCredentials: true },
    );
    expect(out).not.toHaveProperty('authorization');
    expect(out).not.toHaveProperty('x-api-key');
    expect(out['x-kept']).toBe('1');
  });
});
