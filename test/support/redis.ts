import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './net.js';

/** Whether Debian's redis-server is on PATH (the Redis suites need it). */
export const hasRedisServer =
  spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

export const SKIP_REASON =
  'redis-server not found on PATH: Redis suites skipped (install it: apt-get install redis-server)';

if (!hasRedisServer) console.warn(SKIP_REASON);

/** Whether openssl is on PATH (the TLS suites make their certificates with it). */
export const hasOpenssl =
  spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

/** A CA and a server certificate for 127.0.0.1 signed by it (PEM files). */
export interface TlsFiles {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

/** Makes a throw-away CA and a certificate for 127.0.0.1 with openssl (P-256 keys, valid one day). */
export function makeTlsFiles(): TlsFiles {
  const dir = mkdtempSync(join(tmpdir(), 'redis-tls-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => {
    const run = spawnSync('openssl', args, { encoding: 'utf8' });
    if (run.status !== 0)
      throw new Error(`openssl ${args[0]} failed: ${run.stderr}`);
  };
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  openssl(
    'req',
    '-x509',
    ...newKey,
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=api-gateway test CA',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
  );
  openssl(
    'req',
    ...newKey,
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    file('server.key'),
    '-out',
    file('server.csr'),
  );
  writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-days',
    '1',
    '-in',
    file('server.csr'),
    '-CA',
    file('ca.crt'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-extfile',
    file('san.ext'),
    '-out',
    file('server.crt'),
  );
  return {
    dir,
    ca: file('ca.crt'),
    cert: file('server.crt'),
    key: file('server.key'),
  };
}

/** A server reachable only over TLS, only as an ACL user (the default user is off). */
export interface RedisSecurity {
  tls: TlsFiles;
  user: string;
  password: string;
}

/**
 * One admin command to 127.0.0.1:`port` over a short-lived connection (over
 * TLS and as the ACL user when the server has `security`).
 */
export async function adminCommand(
  port: number,
  security: RedisSecurity | undefined,
  ...args: string[]
): Promise<unknown> {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    ...(security && {
      tls: { ca: readFileSync(security.tls.ca) },
      username: security.user,
      password: security.password,
    }),
  });
  try {
    await client.connect();
    return await client.call(args[0], ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

/** A real redis-server on a free 127.0.0.1 port, without persistence, that a test can kill and restart. */
export class RedisServer {
  private child?: ChildProcess;

  private constructor(
    readonly port: number,
    private readonly security?: RedisSecurity,
    private readonly extra: string[] = [],
  ) {}

  /** `extra`: more redis-server arguments (e.g. `--stream-node-max-entries 10`). */
  static async start(
    security?: RedisSecurity,
    extra: string[] = [],
  ): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), security, extra);
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server on the same port; resolves once it accepts connections. */
  async restart(): Promise<void> {
    this.child = await spawnRedis(
      this.port,
      this.extra,
      undefined,
      this.security,
    );
  }

  /** The keys that start with `prefix`, read over an admin connection. */
  keys(prefix: string): Promise<string[]> {
    return adminCommand(
      this.port,
      this.security,
      'KEYS',
      `${prefix}*`,
    ) as Promise<string[]>;
  }

  /** SIGKILL: the server vanishes as in a crash. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }

  /** SIGSTOP / SIGCONT: a server that hangs without closing its connections. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  stop(): Promise<void> {
    return this.kill();
  }
}

/**
 * Starts `redis-server` on 127.0.0.1:`port` without persistence, with `extra`
 * arguments; resolves once its log says `readyText`. With `security` the
 * port speaks TLS only (replication and the cluster bus too) and only its
 * ACL user may log in.
 */
export async function spawnRedis(
  port: number,
  extra: string[] = [],
  readyText = 'Ready to accept connections',
  security?: RedisSecurity,
): Promise<ChildProcess> {
  const listen = security
    ? [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        security.tls.cert,
        '--tls-key-file',
        security.tls.key,
        '--tls-ca-cert-file',
        security.tls.ca,
        '--tls-auth-clients',
        'no',
        '--tls-replication',
        'yes',
        '--tls-cluster',
        'yes',
        '--user',
        'default',
        'off',
        '--user',
        security.user,
        'on',
        `>${security.password}`,
        '~*',
        '&*',
        '+@all',
      ]
    : ['--port', String(port)];
  const child = spawn(
    'redis-server',
    [
      ...extra,
      ...listen,
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (output.length > 100_000) return;
      output += chunk.toString();
      if (output.includes(readyText)) resolve();
    });
    child.once('exit', (code) =>
      reject(new Error(`redis-server exited (${code}): ${output}`)),
    );
  });
  return child;
}
