import { Agent, request as httpRequest } from 'node:http';

export interface LoadResult {
  sent: number;
  statuses: Map<number, number>;
  /** Transport errors seen by the client (a lost request). */
  errors: string[];
}

/**
 * Sends `total` POSTs with at most `concurrency` in flight (keep-alive), calling
 * `onProgress(done)` after each answer: a bounded load on loopback.
 */
export async function load(
  base: string,
  options: {
    total: number;
    concurrency: number;
    path?: string;
    onProgress?: (done: number) => void | Promise<void>;
  },
): Promise<LoadResult> {
  const url = new URL(options.path ?? '/predict', base);
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
  const result: LoadResult = { sent: 0, statuses: new Map(), errors: [] };
  let done = 0;
  const body = '{"request":{"text":"load test"}}';
  const one = () =>
    new Promise<void>((resolve) => {
      const req = httpRequest(
        url,
        {
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          res.resume();
          res.once('end', () => {
            result.statuses.set(
              res.statusCode ?? 0,
              (result.statuses.get(res.statusCode ?? 0) ?? 0) + 1,
            );
            resolve();
          });
          res.once('error', (err) => {
            result.errors.push(err.message);
            resolve();
          });
        },
      );
      req.once('error', (err) => {
        result.errors.push(err.message);
        resolve();
      });
      req.end(body);
    });
  const worker = async () => {
    while (result.sent < options.total) {
      result.sent++;
      await one();
      await options.onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  agent.destroy();
  return result;
}
