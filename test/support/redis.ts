import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

/** Whether Debian's redis-server is on PATH (the Redis suites need it). */
export const hasRedisServer =
  spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

export const SKIP_REASON =
  'redis-server not found on PATH: Redis suites skipped (install it: apt-get install redis-server)';

if (!hasRedisServer) console.warn(SKIP_REASON);

/** A real redis-server on a free 127.0.0.1 port, without persistence, that a test can kill and restart. */
export class RedisServer {
  private child?: ChildProcess;

  private constructor(readonly port: number) {}

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    await server.restart();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server on the same port; resolves once it accepts connections. */
  async restart(): Promise<void> {
    this.child = await spawnRedis(this.port);
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
 * arguments; resolves once its log says `readyText`.
 */
export async function spawnRedis(
  port: number,
  extra: string[] = [],
  readyText = 'Ready to accept connections',
): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    [
      ...extra,
      '--port',
      String(port),
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

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}
