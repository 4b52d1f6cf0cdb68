import { rmSync } from 'node:fs';
import {
  hasOpenssl,
  hasRedisServer,
  makeTlsFiles,
  RedisServer,
  type RedisSecurity,
} from './support/redis.js';
import { RedisClusterGroup } from './support/redis-topologies.js';
import {
  body,
  expectOneLimit,
  gatewayPair,
  health,
  post,
  SHARED_LIMIT,
} from './support/shared-state.js';
import { Upstream } from './support/upstream.js';

if (hasRedisServer && !hasOpenssl)
  console.warn('openssl not found on PATH: the Redis TLS suite is skipped');

const USER = 'gateway';
const PASSWORD = 'tls-test-secret';

/**
 * Redis reachable only over TLS and only as an ACL user (the default user
 * off), as managed offerings run it. The gateways trust the test CA through
 * NODE_EXTRA_CA_CERTS, as a pod trusts a private CA.
 */
describe.skipIf(!hasRedisServer || !hasOpenssl)(
  'Redis over TLS with an ACL user (e2e)',
  () => {
    let security: RedisSecurity;
    let upstream: Upstream;
    let single: RedisServer;
    let cluster: RedisClusterGroup;
    let redisEnv: Record<string, string> = {};
    const pair = gatewayPair(
      () => upstream,
      () => redisEnv,
    );

    beforeAll(async () => {
      security = { tls: makeTlsFiles(), user: USER, password: PASSWORD };
      [upstream, single, cluster] = await Promise.all([
        new Upstream().start(),
        RedisServer.start(security),
        RedisClusterGroup.start(security),
      ]);
    });
    afterEach(() => pair.stop());
    afterAll(async () => {
      await Promise.all([single?.stop(), cluster?.stop(), upstream?.stop()]);
      if (security) rmSync(security.tls.dir, { recursive: true, force: true });
    });

    const overTls = () => ({
      REDIS_URL: `rediss://${USER}:${PASSWORD}@127.0.0.1:${single.port}`,
      NODE_EXTRA_CA_CERTS: security.tls.ca,
    });

    it('REDIS_URL=rediss://user:password@…: one limit for both gateways', async () => {
      redisEnv = overTls();
      const [a, b] = await pair.start(SHARED_LIMIT);
      expect((await health(a)).redis).toMatchObject({
        status: 'up',
        state: 'ready',
      });
      await expectOneLimit([a, b], 'tls single');
    });

    it('REDIS_URL=rediss://user:password@…: a cache entry filled through one gateway is a HIT through the other', async () => {
      redisEnv = overTls();
      const [a, b] = await pair.start({ CACHE_TTL_SECONDS: '60' });
      const text = `tls ${Date.now()}`;
      expect((await post(a, body(text))).xCache).toBe('MISS');
      expect((await post(b, body(text))).xCache).toBe('HIT');
      expect(await single.keys(`${pair.prefix}cache:`)).toHaveLength(1);
    });

    it('a certificate the gateway does not trust: Redis counts as down, every request is still answered', async () => {
      redisEnv = {
        REDIS_URL: `rediss://${USER}:${PASSWORD}@127.0.0.1:${single.port}`,
      };
      const [a] = await pair.start({
        ...SHARED_LIMIT,
        CACHE_TTL_SECONDS: '60',
      });
      const { status, redis } = await health(a);
      expect(status).toBe(200);
      expect(redis).toMatchObject({ status: 'down' });
      for (let i = 0; i < 5; i++)
        expect((await post(a, body('untrusted'))).status).toBe(200);
    });

    const clusterOverTls = () => ({
      REDIS_CLUSTER_NODES: cluster.nodes,
      REDIS_TLS: 'true',
      REDIS_USERNAME: USER,
      REDIS_PASSWORD: PASSWORD,
      NODE_EXTRA_CA_CERTS: security.tls.ca,
    });

    it('Cluster with REDIS_TLS, REDIS_USERNAME and REDIS_PASSWORD: one limit for both gateways', async () => {
      redisEnv = clusterOverTls();
      const [a, b] = await pair.start(SHARED_LIMIT);
      expect((await health(a)).redis).toMatchObject({ status: 'up' });
      await expectOneLimit([a, b], 'tls cluster');
    });

    it('Cluster with REDIS_TLS, REDIS_USERNAME and REDIS_PASSWORD: cache entries on several masters, HITs through the other gateway', async () => {
      redisEnv = clusterOverTls();
      const [a, b] = await pair.start({ CACHE_TTL_SECONDS: '60' });
      const texts = Array.from({ length: 12 }, (_, i) => `tls cluster ${i}`);
      for (const text of texts)
        expect((await post(a, body(text))).xCache).toBe('MISS');
      for (const text of texts)
        expect((await post(b, body(text))).xCache).toBe('HIT');
      const keys = await cluster.keys(`${pair.prefix}cache:`);
      expect(keys).toHaveLength(texts.length);
      const masters = new Set(
        await Promise.all(keys.map((key) => cluster.portOf(key))),
      );
      expect(masters.size).toBeGreaterThan(1);
    });
  },
);
