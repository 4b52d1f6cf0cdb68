import { type BackendAnswer, BackendCall } from './backend-call.js';
import { dispatch } from './dispatch.js';
import type { BackendPool } from './backend-pool.js';
import type { ForwardRequest } from './forwarding.js';
import { readUpTo } from './relay.js';

/** What one try brought back: a status, and the body when it fit the limit. */
export interface CalledAnswer {
  status: number;
  body: Buffer | undefined;
}

/**
 * One try on a pool with no retry and nothing relayed: the answer read
 * whole up to `maxBodyBytes`; undefined on a transport failure, a timeout
 * or a 5xx. The backend's outcome counts for outlier detection.
 */
export async function callOnce(
  pool: BackendPool,
  outgoing: ForwardRequest,
  timeoutMs: number,
  maxBodyBytes: number,
): Promise<CalledAnswer | undefined> {
  const backend = pool.pick();
  if (!backend) return undefined;
  pool.started(backend);
  let call: BackendCall | undefined;
  const timer = setTimeout(() => call?.abort(new Error('timeout')), timeoutMs);
  let ok = false;
  try {
    const answer = await new Promise<BackendAnswer>((resolve, reject) => {
      call = new BackendCall(maxBodyBytes, resolve, reject);
      dispatch(backend, outgoing, call);
    });
    const body = Buffer.isBuffer(answer.body)
      ? answer.body
      : await readUpTo(answer.body, maxBodyBytes);
    ok = answer.status < 500;
    return ok ? { status: answer.status, body } : undefined;
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    pool.finished(backend, ok ? 'success' : 'failure');
  }
}
