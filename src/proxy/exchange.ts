import type { Priority } from '../common/priority.js';
import type { BackendCall } from './backend-call.js';
import type { Cut } from './backend-errors.js';
import type { BackendPool } from './backend-pool.js';
import type { ForwardRequest, Recipient } from './forwarding.js';

/** What to send, or how to make it once a backend slot is held (a batch takes its items then). */
export type Outgoing = ForwardRequest | (() => ForwardRequest | undefined);

/** One exchange under way: its deadline, cancellation and attempt in flight. */
export class Exchange {
  /** Set when the overall deadline fired or the client left. */
  cut: Cut | undefined = undefined;
  /** The attempt in flight, to cancel when the exchange is cut. */
  call: BackendCall | undefined = undefined;
  /** Leaves the admission queue (set while waiting there). */
  onCut: (() => void) | undefined = undefined;
  /** Its class in the admission queue: the recipient's. */
  readonly priority: Priority;
  private request: ForwardRequest | undefined;
  private made = false;

  constructor(
    readonly recipient: Recipient,
    readonly pool: BackendPool,
    private readonly outgoing: Outgoing,
    /** performance.now() at which BACKEND_TIMEOUT_MS ends (0 unless the pool has admission control). */
    readonly deadline: number,
  ) {
    this.priority = recipient.priority;
  }

  /** The request to send; made on first use when lazy (undefined: nothing to send any more). */
  get sent(): ForwardRequest | undefined {
    if (!this.made) {
      this.made = true;
      this.request =
        typeof this.outgoing === 'function' ? this.outgoing() : this.outgoing;
    }
    return this.request;
  }

  cutShort(why: Cut): void {
    this.cut ??= why;
    this.call?.abort(new Error(why));
    this.onCut?.();
  }
}
