import type { GatewayProcess } from './support/process.js';
import { freePort } from './support/net.js';
import { adminCommand, hasRedisServer } from './support/redis.js';
import {
  RedisClusterGroup,
  RedisSentinelGroup,
} from './support/redis-topologies.js';
import {
  body,
  expectOneLimit,
  gatewayPair,
  health,
  post,
  SHARED_LIMIT,
} from './support/shared-state.js';
import { Upstream } from './support/upstream.js';
import { until } from './support/wait.js';

describe.skipIf(!hasRedisServer)(
  'Redis Sentinel: two gateways find the master through Sentinel (e2e)',
  () => {
    let group: RedisSentinelGroup;
    let upstream: Upstream;
    let deadSentinel: number;
    const pair = gatewayPair(
      () => upstream,
      () => ({
        // A sentinel that is down comes first: the client goes on to the next.
        REDIS_SENTINELS: `127.0.0.1:${deadSentinel},127.0.0.1:${group.sentinelPort}`,
        REDIS_SENTINEL_NAME: group.name,
      }),
    );

    beforeAll(async () => {
      [group, upstream, deadSentinel] = await Promise.all([
        RedisSentinelGroup.start(),
        new Upstream().start(),
        freePort(),
      ]);
    });
    afterEach(() => pair.stop());
    afterAll(async () => {
      await group?.stop();
      await upstream?.stop();
    });

    it('one rate limit for both gateways, on the master the Sentinel names', async () => {
      const [a, b] = await pair.start(SHARED_LIMIT);
      const { redis } = await health(a);
      expect(redis).toMatchObject({
        status: 'up',
        state: 'ready',
        target: `sentinel mymaster master 127.0.0.1:${group.masterPort}/0`,
      });

      await expectOneLimit([a, b], 'sentinel');
      const keys = await group.keys(group.masterPort, `${pair.prefix}rl:`);
      expect(keys.length).toBeGreaterThanOrEqual(1);
    });

    it('a cache entry filled through one gateway is a HIT through the other', async () => {
      const [a, b] = await pair.start({ CACHE_TTL_SECONDS: '60' });
      const text = `sentinel ${Date.now()}`;
      const before = upstream.received.length;
      expect((await post(a, body(text))).xCache).toBe('MISS');
      expect((await post(b, body(text))).xCache).toBe('HIT');
      expect(upstream.received.length - before).toBe(1);
      const keys = await group.keys(group.masterPort, `${pair.prefix}cache:`);
      expect(keys).toHaveLength(1);
    });

    it('after SENTINEL FAILOVER both gateways move to the promoted replica by themselves and share state there', async () => {
      const [a, b] = await pair.start({ CACHE_TTL_SECONDS: '60' });
      await group.replicaKnown(10_000);
      expect((await post(a, body('before'))).xCache).toBe('MISS');
      expect((await post(b, body('before'))).xCache).toBe('HIT');

      const started = Date.now();
      await group.failover();
      const followed = async (gw: GatewayProcess) => {
        const { redis } = await health(gw);
        return (
          redis?.status === 'up' &&
          redis.target?.includes(`:${group.replicaPort}/`) === true
        );
      };
      await until(
        async () => (await followed(a)) && (await followed(b)),
        10_000,
        50,
      );
      const movedMs = Date.now() - started;
      console.info(
        `sentinel failover: both gateways on the new master ${movedMs} ms after SENTINEL FAILOVER`,
      );
      expect(await group.master()).toBe(group.replicaPort);

      const text = `after failover ${Date.now()}`;
      expect((await post(a, body(text))).xCache).toBe('MISS');
      expect((await post(b, body(text))).xCache).toBe('HIT');
      const keys = await group.keys(group.replicaPort, `${pair.prefix}cache:`);
      expect(keys.length).toBeGreaterThanOrEqual(1);
    });
  },
);

describe.skipIf(!hasRedisServer)(
  'Redis Cluster: two gateways on a 3-master cluster (e2e)',
  () => {
    let cluster: RedisClusterGroup;
    let upstream: Upstream;
    const pair = gatewayPair(
      () => upstream,
      // Two of the three masters as seeds: the client finds the third itself.
      () => ({
        REDIS_CLUSTER_NODES: cluster.nodes.split(',').slice(0, 2).join(','),
      }),
    );

    beforeAll(async () => {
      [cluster, upstream] = await Promise.all([
        RedisClusterGroup.start(),
        new Upstream().start(),
      ]);
    });
    afterEach(() => pair.stop());
    afterAll(async () => {
      await cluster?.stop();
      await upstream?.stop();
    });

    it('one rate limit for both gateways (the GCRA script runs on its one key’s slot)', async () => {
      const [a, b] = await pair.start(SHARED_LIMIT);
      const { redis } = await health(a);
      expect(redis?.status).toBe('up');
      expect(redis?.state).toBe('ready');
      for (const port of cluster.ports)
        expect(redis?.target).toContain(`127.0.0.1:${port}`);

      await expectOneLimit([a, b], 'cluster');
      const keys = await cluster.keys(`${pair.prefix}rl:`);
      expect(keys).toHaveLength(1);
    });

    it('capture from both gateways into one stream (the capture script runs on its key’s slot)', async () => {
      const [a, b] = await pair.start({
        CAPTURE_SAMPLE_RATE: '1',
        CAPTURE_REDIS_STREAM: 'capture',
      });
      await post(a, body('captured through a'));
      await post(b, body('captured through b'));
      const key = `${pair.prefix}capture`;
      const port = await cluster.portOf(key);
      const length = async () =>
        Number(await adminCommand(port, undefined, 'XLEN', key));
      // Two events per exchange, delivered after the answers.
      await until(async () => (await length()) === 4);
      const entries = (await adminCommand(
        port,
        undefined,
        'XRANGE',
        key,
        '-',
        '+',
      )) as [string, string[]][];
      const data = entries.map(
        ([, fields]) => fields[fields.indexOf('data') + 1],
      );
      expect(data).toEqual(
        expect.arrayContaining([
          body('captured through a'),
          body('captured through b'),
        ]),
      );
    });

    it('cache entries filled through one gateway are HITs through the other, spread over the masters', async () => {
      const [a, b] = await pair.start({ CACHE_TTL_SECONDS: '60' });
      const before = upstream.received.length;
      const texts = Array.from({ length: 6 }, (_, i) => `cluster ${i}`);
      for (const text of texts)
        expect((await post(a, body(text))).xCache).toBe('MISS');
      for (const text of texts)
        expect((await post(b, body(text))).xCache).toBe('HIT');
      expect(upstream.received.length - before).toBe(texts.length);

      const keys = await cluster.keys(pair.prefix);
      const cacheKeys = keys.filter((k) =>
        k.startsWith(`${pair.prefix}cache:`),
      );
      expect(cacheKeys).toHaveLength(texts.length);
      const masters = new Set(
        await Promise.all(cacheKeys.map((k) => cluster.portOf(k))),
      );
      console.info(
        `cluster: ${cacheKeys.length} cache entries on ${masters.size} of 3 masters`,
      );
      expect(masters.size).toBeGreaterThan(1);
    });

    it('a master killed: every request still answered (each Redis call bounded by REDIS_TIMEOUT_MS), entries on the live masters still HITs', async () => {
      const [a, b] = await pair.start({
        CACHE_TTL_SECONDS: '60',
        RATE_LIMIT_RPS: '1000',
        REDIS_TIMEOUT_MS: '100',
      });
      const texts = Array.from({ length: 6 }, (_, i) => `killed ${i}`);
      for (const text of texts) await post(a, body(text));
      const cacheKeys = await cluster.keys(`${pair.prefix}cache:`);
      const dead = await cluster.portOf(cacheKeys[0]);
      const onLive = (
        await Promise.all(cacheKeys.map((k) => cluster.portOf(k)))
      ).filter((port) => port !== dead).length;
      await cluster.kill(dead);

      const answers = await Promise.all(
        texts.map((text) => post(b, body(text))),
      );
      const slowest = Math.max(...answers.map((x) => x.ms));
      const hits = answers.filter((x) => x.xCache === 'HIT').length;
      console.info(
        `cluster, one of 3 masters killed: ${answers.length}/6 answered 200, ${hits} HITs (${onLive} entries on live masters), slowest ${slowest.toFixed(0)} ms`,
      );
      expect(answers.map((x) => x.status)).toEqual(Array(6).fill(200));
      expect(hits).toBe(onLive);
      expect(slowest).toBeLessThan(1500);
      expect((await health(b)).status).toBe(200);
    });
  },
);
