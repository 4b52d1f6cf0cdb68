import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.js';
import { adminCommand, spawnRedis, type RedisSecurity } from './redis.js';
import { until } from './wait.js';

const running = (child: ChildProcess) =>
  child.exitCode === null && child.signalCode === null;

/** Ends every process with SIGKILL and removes the temp dir. */
async function killAll(children: ChildProcess[], dir: string): Promise<void> {
  await Promise.all(
    children.filter(running).map((child) => {
      child.kill('SIGKILL');
      return once(child, 'exit');
    }),
  );
  rmSync(dir, { recursive: true, force: true });
}

/** One admin command to a server without TLS or ACL user. */
function ask(port: number, ...args: string[]): Promise<unknown> {
  return adminCommand(port, undefined, ...args);
}

/**
 * A master, one replica and one Sentinel watching them as `mymaster`
 * (quorum 1), all on free 127.0.0.1 ports.
 */
export class RedisSentinelGroup {
  readonly name = 'mymaster';

  private constructor(
    private readonly children: ChildProcess[],
    private readonly dir: string,
    readonly masterPort: number,
    readonly replicaPort: number,
    readonly sentinelPort: number,
  ) {}

  static async start(): Promise<RedisSentinelGroup> {
    const dir = mkdtempSync(join(tmpdir(), 'redis-sentinel-'));
    const [masterPort, replicaPort, sentinelPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
    ]);
    const children: ChildProcess[] = [];
    const group = new RedisSentinelGroup(
      children,
      dir,
      masterPort,
      replicaPort,
      sentinelPort,
    );
    try {
      // The replica loads the master's snapshot from a file: keep it in `dir`.
      children.push(
        await spawnRedis(masterPort, [
          '--dir',
          dir,
          '--repl-diskless-sync-delay',
          '0',
        ]),
      );
      children.push(
        await spawnRedis(
          replicaPort,
          ['--dir', dir, '--replicaof', '127.0.0.1', String(masterPort)],
          'MASTER <-> REPLICA sync: Finished with success',
        ),
      );
      const conf = join(dir, 'sentinel.conf');
      writeFileSync(
        conf,
        [
          `dir ${dir}`,
          `sentinel monitor mymaster 127.0.0.1 ${masterPort} 1`,
          'sentinel down-after-milliseconds mymaster 1000',
          'sentinel failover-timeout mymaster 4000',
          '',
        ].join('\n'),
      );
      children.push(
        await spawnRedis(
          sentinelPort,
          [conf, '--sentinel'],
          '+monitor master mymaster',
        ),
      );
      return group;
    } catch (err) {
      await group.stop();
      throw err;
    }
  }

  /** The master's port as the Sentinel reports it. */
  async master(): Promise<number> {
    const [, port] = (await ask(
      this.sentinelPort,
      'SENTINEL',
      'GET-MASTER-ADDR-BY-NAME',
      this.name,
    )) as [string, string];
    return Number(port);
  }

  /** Resolves once the Sentinel has found the replica and sees it linked to the master. */
  async replicaKnown(timeoutMs: number): Promise<number> {
    return until(
      async () => {
        const replicas = (await ask(
          this.sentinelPort,
          'SENTINEL',
          'REPLICAS',
          this.name,
        )) as string[][];
        return replicas.some((fields) => {
          const info = new Map<string, string>();
          for (let i = 0; i + 1 < fields.length; i += 2)
            info.set(fields[i], fields[i + 1]);
          return (
            info.get('flags') === 'slave' &&
            info.get('master-link-status') === 'ok'
          );
        });
      },
      timeoutMs,
      50,
    );
  }

  /** `SENTINEL FAILOVER`: promotes the replica without waiting for the master to fail. */
  async failover(): Promise<void> {
    await ask(this.sentinelPort, 'SENTINEL', 'FAILOVER', this.name);
  }

  /** The keys on the Redis at `port` that start with `prefix`. */
  keys(port: number, prefix: string): Promise<string[]> {
    return ask(port, 'KEYS', `${prefix}*`) as Promise<string[]>;
  }

  stop(): Promise<void> {
    return killAll(this.children, this.dir);
  }
}

/**
 * Three master nodes (no replicas, full coverage not required) forming one
 * Redis Cluster on free 127.0.0.1 ports; with `security`, over TLS and for
 * its ACL user only.
 */
export class RedisClusterGroup {
  private constructor(
    private readonly children: ChildProcess[],
    private readonly dir: string,
    readonly ports: number[],
    private readonly security?: RedisSecurity,
  ) {}

  private ask(port: number, ...args: string[]): Promise<unknown> {
    return adminCommand(port, this.security, ...args);
  }

  /** Seed list for REDIS_CLUSTER_NODES. */
  get nodes(): string {
    return this.ports.map((port) => `127.0.0.1:${port}`).join(',');
  }

  static async start(security?: RedisSecurity): Promise<RedisClusterGroup> {
    const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
    const children: ChildProcess[] = [];
    const ports: number[] = [];
    const group = new RedisClusterGroup(children, dir, ports, security);
    try {
      for (let i = 0; i < 3; i++) {
        // The bus port is set explicitly: port + 10000 may not be free (or valid).
        const [port, busPort] = [await freePort(), await freePort()];
        ports.push(port);
        children.push(
          await spawnRedis(
            port,
            [
              '--dir',
              dir,
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              `nodes-${port}.conf`,
              '--cluster-port',
              String(busPort),
              '--cluster-node-timeout',
              '2000',
              // A dead master then stops only its own slots, not the whole cluster.
              '--cluster-require-full-coverage',
              'no',
            ],
            undefined,
            security,
          ),
        );
      }
      const created = spawnSync(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...ports.map((port) => `127.0.0.1:${port}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
          ...(security
            ? [
                '--tls',
                '--cacert',
                security.tls.ca,
                '--user',
                security.user,
                '--pass',
                security.password,
              ]
            : []),
        ],
        { encoding: 'utf8', timeout: 10_000 },
      );
      if (created.status !== 0)
        throw new Error(`redis-cli --cluster create failed: ${created.stdout}`);
      await until(
        async () => {
          const infos = await Promise.all(
            ports.map((port) => group.ask(port, 'CLUSTER', 'INFO')),
          );
          return infos.every((info) =>
            String(info).includes('cluster_state:ok'),
          );
        },
        10_000,
        50,
      );
      return group;
    } catch (err) {
      await group.stop();
      throw err;
    }
  }

  /** Where the cluster keeps `key` (the port of the master of its slot). */
  async portOf(key: string): Promise<number> {
    const slot = (await this.ask(
      this.ports[0],
      'CLUSTER',
      'KEYSLOT',
      key,
    )) as number;
    const shards = (await this.ask(this.ports[0], 'CLUSTER', 'SLOTS')) as [
      number,
      number,
      [string, number],
    ][];
    const shard = shards.find(([from, to]) => slot >= from && slot <= to);
    return shard![2][1];
  }

  /** SIGKILL to the node on `port`: its slots have no master until it is back. */
  async kill(port: number): Promise<void> {
    const child = this.children[this.ports.indexOf(port)];
    child.kill('SIGKILL');
    await once(child, 'exit');
  }

  /** Keys starting with `prefix`, over every live node. */
  async keys(prefix: string): Promise<string[]> {
    const live = this.ports.filter((_, i) => running(this.children[i]));
    const perNode = await Promise.all(
      live.map((port) => this.ask(port, 'KEYS', `${prefix}*`)),
    );
    return (perNode as string[][]).flat();
  }

  stop(): Promise<void> {
    return killAll(this.children, this.dir);
  }
}
