import { PRIORITIES, type Priority, rankOf } from '../common/priority.js';

/** What the queue needs of one waiting request. */
export interface Queued {
  readonly priority: Priority;
}

/**
 * The requests waiting for a backend slot, one FIFO per priority class:
 * served critical first, then standard, then sheddable, in arrival order
 * within a class. Without tenants every request is standard: one FIFO.
 */
export class WaitQueue<T extends Queued> {
  private readonly classes: T[][] = PRIORITIES.map(() => []);
  private count = 0;
  private aboveSheddableAt = -Infinity;

  get length(): number {
    return this.count;
  }

  /** A request of `priority` found no free slot at `now` (queued or refused). */
  found(priority: Priority, now: number): void {
    if (priority !== 'sheddable') this.aboveSheddableAt = now;
  }

  /** Queues `item`, which had to wait at `now`. */
  push(item: T, now: number): void {
    this.classes[rankOf(item.priority)].push(item);
    this.count++;
    this.found(item.priority, now);
  }

  /**
   * Why a sheddable request may not wait, if it may not: the queue is half
   * full of `max`, or the backends are busy with higher classes (one waits,
   * or found no free slot within the last `withinMs`): queued behind them, it would
   * only be overtaken until its deadline passed, and refused late.
   */
  refusesSheddable(
    max: number,
    withinMs: number,
    now: number,
  ): string | undefined {
    if (this.count >= max / 2)
      return `the queue is half full (${this.count} of ${max}): sheddable requests are refused`;
    if (this.busyAboveSheddable(withinMs, now))
      return 'requests of a higher class wait for the backends: sheddable requests are refused';
    return undefined;
  }

  /** A request above sheddable waits, or found no free slot within the last `withinMs`. */
  busyAboveSheddable(withinMs: number, now: number): boolean {
    return this.ahead('standard') > 0 || now - this.aboveSheddableAt < withinMs;
  }

  /** Takes `item` out; false when it was not queued (any more). */
  remove(item: T): boolean {
    const queue = this.classes[rankOf(item.priority)];
    const index = queue.indexOf(item);
    if (index === -1) return false;
    queue.splice(index, 1);
    this.count--;
    return true;
  }

  /** How many wait that would be served before a newcomer of `priority`. */
  ahead(priority: Priority): number {
    let ahead = 0;
    for (let rank = 0; rank <= rankOf(priority); rank++)
      ahead += this.classes[rank].length;
    return ahead;
  }

  /**
   * The newest waiting request of the lowest class below `priority` (the
   * one a newcomer of that class displaces when the queue is full).
   */
  newestBelow(priority: Priority): T | undefined {
    for (let rank = this.classes.length - 1; rank > rankOf(priority); rank--) {
      const queue = this.classes[rank];
      if (queue.length > 0) return queue[queue.length - 1];
    }
    return undefined;
  }

  /** The classes in the order they are served, each oldest first (live arrays). */
  inOrder(): readonly (readonly T[])[] {
    return this.classes;
  }
}
