import { connect } from 'node:net';
import { spawnGateway } from './support/process.js';
import { Upstream } from './support/upstream.js';

const REQUEST =
  'POST /predict HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n{"request":{"text":"x"}}';

interface ClientResult {
  answered: number;
  /** Requests written on a connection the gateway had not announced to close, never answered. */
  unanswered: number;
}

/**
 * A keep-alive client on a raw socket that sends its next request as soon
 * as an answer ends, until an answer says `Connection: close` (as it should
 * stop) or the connection closes.
 */
function backToBack(port: number): Promise<ClientResult> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let buffered = '';
    let answered = 0;
    let waiting = false;
    const send = () => {
      waiting = true;
      socket.write(REQUEST);
    };
    socket.on('connect', send);
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buffered.slice(0, end);
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        buffered = buffered.slice(end + 4 + length);
        answered++;
        waiting = false;
        if (/\r\nconnection: *close/i.test(head)) return;
        send();
      }
    });
    socket.on('close', () =>
      resolve({ answered, unanswered: waiting ? 1 : 0 }),
    );
  });
}

describe('Shutdown under keep-alive load (process e2e)', () => {
  let upstream: Upstream;

  beforeAll(async () => {
    upstream = await new Upstream().start();
  });

  afterAll(() => upstream.stop());

  it('answers every request that arrived on an open connection when SIGTERM comes with SHUTDOWN_DELAY_MS=0 (5 trials x 32 clients)', async () => {
    const lost: number[] = [];
    const answered: number[] = [];
    for (let trial = 0; trial < 5; trial++) {
      const gw = await spawnGateway({
        BACKEND_URL: upstream.url,
        SHUTDOWN_DELAY_MS: '0',
        HEALTH_CHECK_INTERVAL_MS: '60000',
      });
      try {
        const port = Number(new URL(gw.url).port);
        const clients = Array.from({ length: 32 }, () => backToBack(port));
        // Let every client get going before the signal.
        const started = Date.now();
        while (upstream.received.length < 200 && Date.now() - started < 5000)
          await new Promise<void>((resolve) => setImmediate(resolve));
        gw.child.kill('SIGTERM');
        const results = await Promise.all(clients);
        expect(await gw.exited).toBe(0);
        expect(results.every((r) => r.answered > 0)).toBe(true);
        lost.push(results.reduce((sum, r) => sum + r.unanswered, 0));
        answered.push(results.reduce((sum, r) => sum + r.answered, 0));
      } finally {
        await gw.stop();
      }
      upstream.received.length = 0;
    }
    console.log(
      `SIGTERM under keep-alive load: answers per trial ${answered.join(', ')}; lost ${lost.join(', ')}`,
    );
    expect(lost).toEqual([0, 0, 0, 0, 0]);
  }, 60_000);
});
