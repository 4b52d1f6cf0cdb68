import type { BackendCall } from './backend-call.js';
import type { Cut } from './backend-errors.js';
import type { BackendPool } from './backend-pool.js';
import type { Forwarding, ForwardRequest } from './forwarding.js';

/** One forwarding under way: its deadline, cancellation and attempt in flight. */
export class Exchange {
  /** Set when the overall deadline fired or the client left. */
  cut: Cut | undefined = undefined;
  /** The attempt in flight, to cancel when the exchange is cut. */
  call: BackendCall | undefined = undefined;
  /** Leaves the admission queue (set while waiting there). */
  onCut: (() => void) | undefined = undefined;

  constructor(
    readonly client: Forwarding,
    readonly pool: BackendPool,
    readonly outgoing: ForwardRequest,
    /** performance.now() at which BACKEND_TIMEOUT_MS ends (0 unless the pool has admission control). */
    readonly deadline: number,
  ) {}

  cutShort(why: Cut): void {
    this.cut ??= why;
    this.call?.abort(new Error(why));
    this.onCut?.();
  }
}
