/**
 * Bytes waiting for a sink: one allocation of a fixed size, made on first
 * use and reused as a ring, holding records (packed exchanges) oldest
 * first. Records are handed out in order and may be done with out of
 * order (several sends in flight); their space comes back once every older
 * record is done too. The ring never grows: a record that does not fit is
 * refused. Nothing per record lives on the V8 heap but two numbers.
 */
export class ExchangeRing {
  private memory: Buffer | undefined;
  /** Per record, oldest first from `first`: where it starts, how long it is (negative: done). */
  private starts: number[] = [];
  private lengths: number[] = [];
  /** Records forgotten by `compact`: a record's number is `base` + its place in the lists. */
  private base = 0;
  private first = 0;
  /** The next record to hand out. */
  private next = 0;
  /** Where the oldest record starts; where the next one would go. */
  private readAt = 0;
  private writeAt = 0;
  /** Records run from `readAt` up to the end of the upper part and on from 0. */
  private wrapped = false;
  private usedBytes = 0;

  constructor(readonly capacity: number) {}

  /** Bytes of the records held (queued, or handed out and not yet done). */
  get used(): number {
    return this.usedBytes;
  }

  /** Records not handed out yet. */
  get queued(): number {
    return this.starts.length - this.next;
  }

  /**
   * Space for a record of `length` bytes, written by `write` at once; false
   * when it does not fit.
   */
  add(length: number, write: (target: Buffer, at: number) => void): boolean {
    const at = this.place(length);
    if (at < 0) return false;
    this.memory ??= Buffer.allocUnsafeSlow(this.capacity);
    write(this.memory, at);
    this.starts.push(at);
    this.lengths.push(length);
    this.writeAt = at + length;
    this.usedBytes += length;
    return true;
  }

  /** The next queued record (its number, and a view of its bytes), or undefined. */
  take(): { record: number; bytes: Buffer } | undefined {
    if (this.next >= this.starts.length) return undefined;
    const index = this.next++;
    const start = this.starts[index];
    return {
      record: this.base + index,
      bytes: this.memory!.subarray(start, start + this.lengths[index]),
    };
  }

  /** Done with a record handed out: its space is free once all older ones are done too. */
  done(record: number): void {
    const index = record - this.base;
    this.usedBytes -= this.lengths[index];
    this.lengths[index] = -1;
    while (this.first < this.next && this.lengths[this.first] < 0) this.first++;
    if (this.first === this.starts.length) return this.reset();
    this.readAt = this.starts[this.first];
    // The oldest record is back in the lower part: the upper part is free.
    if (this.wrapped && this.readAt < this.writeAt) this.wrapped = false;
    this.compact();
  }

  /** Gives up every queued record (not handed out); returns how many. */
  clear(): number {
    const dropped = this.queued;
    for (let i = this.next; i < this.starts.length; i++)
      this.usedBytes -= this.lengths[i];
    this.starts.length = this.lengths.length = this.next;
    if (this.first === this.next) this.reset();
    return dropped;
  }

  /** Where a record of `length` bytes goes, or -1. */
  private place(length: number): number {
    if (this.first === this.starts.length) this.reset();
    if (this.wrapped)
      return this.writeAt + length <= this.readAt ? this.writeAt : -1;
    if (this.writeAt + length <= this.capacity) return this.writeAt;
    // No room above: from the start, below the oldest record.
    if (length <= this.readAt) {
      this.wrapped = true;
      return 0;
    }
    return -1;
  }

  private reset(): void {
    this.base += this.starts.length;
    this.starts = [];
    this.lengths = [];
    this.first = this.next = 0;
    this.readAt = this.writeAt = 0;
    this.wrapped = false;
    this.usedBytes = 0;
  }

  /** Drops the bookkeeping of records done with, once it dominates. */
  private compact(): void {
    if (this.first < 1024 || this.first * 2 < this.starts.length) return;
    this.starts = this.starts.slice(this.first);
    this.lengths = this.lengths.slice(this.first);
    this.base += this.first;
    this.next -= this.first;
    this.first = 0;
  }
}
