import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface GatewayProcess {
  child: ChildProcess;
  url: string;
  /** Every JSON line the process printed on stdout so far. */
  lines: Record<string, unknown>[];
  /** Resolves with the first line (already printed or future) that matches. */
  waitForLine(
    match: (line: Record<string, unknown>) => boolean,
  ): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** Runs the built gateway (`dist/main.js`) as production does, on an ephemeral port. */
export async function spawnGateway(
  env: Record<string, string>,
): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ['dist/main.js'], {
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      GATEWAY_PORT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters: {
    match: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  createInterface({ input: child.stdout }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      line = { unparsed: text };
    }
    lines.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.match(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const waitForLine = (match: (l: Record<string, unknown>) => boolean) => {
    const found = lines.find(match);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      waiters.push({ match, resolve });
      void exited.then((code) =>
        reject(
          new Error(`gateway exited (${code}) before the expected log line`),
        ),
      );
    });
  };
  const listening = await waitForLine(
    (l) =>
      typeof l.msg === 'string' && l.msg.startsWith('api-gateway listening'),
  );
  const port = Number(listening.port);
  return {
    child,
    url: `http://127.0.0.1:${port}`,
    lines,
    waitForLine,
    exited,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
