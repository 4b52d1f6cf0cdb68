import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { ConfigValidationError } from '../src/config/env.js';
import { TenantsService } from '../src/tenants/tenants.service.js';
import {
  metricsText,
  startGateway,
  type RunningGateway,
} from './support/gateway.js';
import { claims, rsaKey, signJwt, ISSUER, AUDIENCE } from './support/jwt.js';
import { sample } from './support/raw.js';
import { adminCommand, hasRedisServer } from './support/redis.js';
import { redisGatewayPair } from './support/shared-state.js';
import { Upstream } from './support/upstream.js';
import { until } from './support/wait.js';

const digest = (key: string) =>
  `sha256:${createHash('sha256').update(key).digest('hex')}`;

/** A tenants file in a fresh directory; `write` replaces its text. */
function tenantsFile(text: string) {
  const path = join(mkdtempSync(join(tmpdir(), 'tenants-')), 'tenants.yaml');
  writeFileSync(path, text);
  return { path, write: (next: string) => writeFileSync(path, next) };
}

const TENANTS = `
default: { rps: 0.01, burst: 3 }
tenants:
  checkout:
    apiKeys: ["${digest('checkout-key')}", "${digest('checkout-key-2')}"]
    rps: 0.01
    burst: 10
    priority: critical
  backfill:
    apiKeys: ["${digest('backfill-key')}"]
    priority: sheddable
`;

const texts = (n: number) =>
  JSON.stringify({
    request: { texts: Array.from({ length: n }, (_, i) => `t${i}`) },
  });

function post(
  gw: { url: string },
  path: string,
  body: string,
  headers: Record<string, string>,
) {
  return request(gw.url)
    .post(path)
    .set('content-type', 'application/json')
    .set(headers)
    .send(body);
}

const key = (k: string) => ({ 'x-api-key': k });
const one = JSON.stringify({ request: { text: 'one' } });

describe('Tenants: identity, quotas in items, cache scope, live file (e2e)', () => {
  const jwtKey = rsaKey('t');
  let upstream: Upstream;
  let gw: RunningGateway | undefined;
  let file: ReturnType<typeof tenantsFile>;

  beforeAll(async () => {
    upstream = await new Upstream().start();
  });
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });
  afterAll(() => upstream.stop());

  async function start(env: Record<string, string> = {}, text = TENANTS) {
    file = tenantsFile(text);
    const pem = join(mkdtempSync(join(tmpdir(), 'jwt-')), 'key.pem');
    writeFileSync(
      pem,
      jwtKey.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    );
    gw = await startGateway({
      BACKEND_URL: upstream.url,
      TENANTS_FILE: file.path,
      JWT_PUBLIC_KEY_FILE: pem,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
      ...env,
    });
    return gw;
  }

  it('names the tenant by its API keys or a JWT claim, anyone else default; counted per tenant', async () => {
    const gw = await start({ API_KEYS: 'unlisted-key' });
    const jwt = {
      authorization: `Bearer ${signJwt(jwtKey, claims({ sub: 'checkout' }))}`,
    };
    for (const headers of [
      key('checkout-key'),
      jwt,
      key('unlisted-key'),
      key('backfill-key'),
    ])
      expect((await post(gw, '/predict', one, headers)).status).toBe(200);
    const refused = await post(gw, '/predict', one, key('nobody'));
    expect(refused.status).toBe(401);
    const metrics = await metricsText(gw);
    expect(
      sample(
        metrics,
        'gateway_tenant_requests_total{tenant="checkout",status="200"}',
      ),
    ).toBe(2);
    expect(
      sample(
        metrics,
        'gateway_tenant_requests_total{tenant="default",status="200"}',
      ),
    ).toBe(1);
    expect(
      sample(
        metrics,
        'gateway_tenant_requests_total{tenant="backfill",status="200"}',
      ),
    ).toBe(1);
    // Not identified: no tenant to count under.
    expect(metrics).not.toMatch(
      /gateway_tenant_requests_total\{[^}]*status="401"/,
    );
  });

  it('quotas count items: a /batch_predict costs its texts, one over the burst is refused, /predict costs 1', async () => {
    const gw = await start();
    const six = await post(gw, '/batch_predict', texts(6), key('checkout-key'));
    expect(six.status).toBe(200);
    expect(six.headers['ratelimit-limit']).toBe('10');
    expect(six.headers['ratelimit-remaining']).toBe('4');
    // The tenant's other key shares the tenant's quota.
    const five = await post(
      gw,
      '/batch_predict',
      texts(5),
      key('checkout-key-2'),
    );
    expect(five.status).toBe(429);
    expect(Number(five.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(five.body).toEqual({
      statusCode: 429,
      error: 'Too Many Requests',
      message: expect.stringMatching(
        /^rate limit exceeded, retry in \d+ s$/,
      ) as string,
      request_id: five.headers['x-request-id'],
    });
    const single = await post(gw, '/predict', one, key('checkout-key'));
    expect([single.status, single.headers['ratelimit-remaining']]).toEqual([
      200,
      '3',
    ]);
    // Unreadable as a batch: it costs 1.
    const odd = await post(
      gw,
      '/batch_predict',
      'not json',
      key('checkout-key'),
    );
    expect(odd.headers['ratelimit-remaining']).toBe('2');
    const huge = await post(
      gw,
      '/batch_predict',
      texts(11),
      key('checkout-key'),
    );
    expect(huge.status).toBe(429);
    expect(huge.headers['retry-after']).toBeUndefined();
    expect(huge.body.message).toBe(
      "this request's 11 items are more than the 10 allowed at once: split it",
    );
    // Default: every client not listed has a quota of its own.
    const jwtA = {
      authorization: `Bearer ${signJwt(jwtKey, claims({ sub: 'a' }))}`,
    };
    const jwtB = {
      authorization: `Bearer ${signJwt(jwtKey, claims({ sub: 'b' }))}`,
    };
    expect((await post(gw, '/batch_predict', texts(3), jwtA)).status).toBe(200);
    expect((await post(gw, '/predict', one, jwtA)).status).toBe(429);
    expect((await post(gw, '/batch_predict', texts(3), jwtB)).status).toBe(200);
    // A tenant without rps has no quota.
    for (let i = 0; i < 3; i++)
      expect(
        (await post(gw, '/batch_predict', texts(50), key('backfill-key')))
          .status,
      ).toBe(200);
  });

  it('RATE_LIMIT_UNIT=items: the global per-client limit counts texts too', async () => {
    const gw = await start(
      { RATE_LIMIT_RPS: '1', RATE_LIMIT_BURST: '5', RATE_LIMIT_UNIT: 'items' },
      'tenants: {}\n',
    );
    const jwt = { authorization: `Bearer ${signJwt(jwtKey)}` };
    expect((await post(gw, '/batch_predict', texts(5), jwt)).status).toBe(200);
    const next = await post(gw, '/predict', one, jwt);
    expect([next.status, next.headers['ratelimit-limit']]).toEqual([429, '5']);
  });

  it('CACHE_SCOPE=key: the keys of one tenant share cache entries, other clients do not', async () => {
    const gw = await start({
      CACHE_TTL_SECONDS: '60',
      API_KEYS: 'unlisted-key',
    });
    const body = JSON.stringify({ request: { text: `scoped ${Date.now()}` } });
    const xCache = async (headers: Record<string, string>) =>
      (await post(gw, '/predict', body, headers)).headers['x-cache'];
    expect(await xCache(key('checkout-key'))).toBe('MISS');
    expect(await xCache(key('checkout-key-2'))).toBe('HIT');
    expect(
      await xCache({
        authorization: `Bearer ${signJwt(jwtKey, claims({ sub: 'checkout' }))}`,
      }),
    ).toBe('HIT');
    expect(await xCache(key('backfill-key'))).toBe('MISS');
    expect(await xCache(key('unlisted-key'))).toBe('MISS');
  });

  it('re-reads the file when it changes; a bad version is refused and the last good one stays', async () => {
    const gw = await start();
    expect((await post(gw, '/predict', one, key('new-key'))).status).toBe(401);
    file.write(
      `${TENANTS}  newcomer:\n    apiKeys: ["${digest('new-key')}"]\n`,
    );
    await until(
      async () =>
        (await post(gw, '/predict', one, key('new-key'))).status === 200,
      5000,
      100,
    );
    const refused = once(gw.app.get(TenantsService).events, 'refused');
    file.write('tenants:\n  broken: { priority: urgent }\n');
    expect(await refused).toEqual([
      [expect.stringMatching(/tenants\.broken\.priority: expected one of/)],
    ]);
    expect((await post(gw, '/predict', one, key('new-key'))).status).toBe(200);
    expect((await post(gw, '/predict', one, key('checkout-key'))).status).toBe(
      200,
    );
  });

  it('a bad file stops the boot with one line per problem', async () => {
    const error = await start(
      {},
      `tenants:\n  a: { priority: urgent, apiKeys: ["md5:1"] }\n  b: { burst: 5 }\n  default: {}\n`,
    ).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ConfigValidationError);
    const lines = (error as Error).message.split('\n');
    expect(
      lines.every((l) => l.startsWith(`Invalid tenants file ${file.path}: `)),
    ).toBe(true);
    expect(lines.map((l) => l.slice(l.indexOf(': ') + 2))).toEqual([
      'tenants.a.apiKeys[0]: expected "sha256:" and the 64 hex digits of a key\'s SHA-256',
      'tenants.a.priority: expected one of critical, standard, sheddable',
      'tenants.b.rps: expected rps with burst',
      'tenants.default: expected a name other than "default"',
    ]);
  });
});

describe.skipIf(!hasRedisServer)(
  'Tenant quotas across two gateway processes through one redis-server (e2e)',
  () => {
    const stack = redisGatewayPair();
    const { pair } = stack;

    it('one quota in items for both replicas, one script call per request (both buckets at once)', async () => {
      const file = tenantsFile(TENANTS);
      const [a, b] = await pair.start({
        TENANTS_FILE: file.path,
        RATE_LIMIT_RPS: '1',
        RATE_LIMIT_BURST: '100',
      });
      await adminCommand(stack.redis.port, undefined, 'CONFIG', 'RESETSTAT');
      expect(
        (await post(a, '/batch_predict', texts(6), key('checkout-key'))).status,
      ).toBe(200);
      const four = await post(
        b,
        '/batch_predict',
        texts(4),
        key('checkout-key-2'),
      );
      expect([four.status, four.headers['ratelimit-remaining']]).toEqual([
        200,
        '0',
      ]);
      const late = await post(a, '/predict', one, key('checkout-key'));
      expect(late.status).toBe(429);
      expect(
        (await post(b, '/predict', one, key('checkout-key-2'))).status,
      ).toBe(429);
      const stats = String(
        await adminCommand(stack.redis.port, undefined, 'INFO', 'commandstats'),
      );
      const calls = (name: string) =>
        Number(
          new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0,
        );
      expect(calls('evalsha') + calls('eval')).toBe(4);
      // The tenant's bucket, and each key's RATE_LIMIT_RPS bucket in its slot.
      const keys = (await stack.redis.keys(pair.prefix)).sort();
      expect(keys).toHaveLength(3);
      expect(keys[0]).toBe(`${pair.prefix}rl:{t:checkout}`);
      for (const k of keys.slice(1))
        expect(k).toMatch(/^t\d+:rl:\{t:checkout\}key:[0-9a-f]{8}$/);
    });

    it('without Redis each replica holds its own quota (what Redis fixes)', async () => {
      const file = tenantsFile(TENANTS);
      const [a, b] = await pair.start({
        TENANTS_FILE: file.path,
        REDIS_URL: '',
      });
      expect(
        (await post(a, '/batch_predict', texts(6), key('checkout-key'))).status,
      ).toBe(200);
      expect(
        (await post(b, '/batch_predict', texts(6), key('checkout-key'))).status,
      ).toBe(200);
    });
  },
);
