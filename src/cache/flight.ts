import type { CachedAnswer } from './cache.store.js';

/** How the leading request's call ended: an answer to share, an error to share, or neither. */
export type Outcome = { answer: CachedAnswer } | { error: unknown } | undefined;

/** One backend call in progress for a key, awaited by identical requests (single flight). */
export class Flight {
  readonly done: Promise<Outcome>;
  waiters = 0;
  private resolve!: (outcome: Outcome) => void;
  private settled = false;

  constructor() {
    this.done = new Promise((resolve) => (this.resolve = resolve));
  }

  settle(outcome: Outcome): void {
    if (this.settled) return;
    this.settled = true;
    this.resolve(outcome);
  }
}
