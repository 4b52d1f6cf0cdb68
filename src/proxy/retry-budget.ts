/**
 * The retry budget (Envoy's idea): retries may add at most `percent` % to the
 * requests of the last second, and at least `minPerSecond` are always allowed,
 * so a sick pool cannot turn every failure into a retry storm. "The last
 * second" slides: the previous second's counts weigh in for the part of it
 * that is still inside the window.
 */
export class RetryBudget {
  private second = 0;
  private requests = 0;
  private retries = 0;
  private previousRequests = 0;
  private previousRetries = 0;

  constructor(
    private readonly percent: number,
    private readonly minPerSecond = 3,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts a client request toward the base of the budget. */
  countRequest(): void {
    this.roll();
    this.requests++;
  }

  /** Takes one retry; false when the recent traffic affords none. */
  take(): boolean {
    const now = this.roll();
    const weight = 1 - (now % 1000) / 1000;
    const requests = this.requests + this.previousRequests * weight;
    const retries = this.retries + this.previousRetries * weight;
    const allowed = Math.max(
      this.minPerSecond,
      (requests * this.percent) / 100,
    );
    if (retries + 1 > allowed) return false;
    this.retries++;
    return true;
  }

  private roll(): number {
    const now = this.now();
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      const adjacent = second === this.second + 1;
      this.previousRequests = adjacent ? this.requests : 0;
      this.previousRetries = adjacent ? this.retries : 0;
      this.requests = 0;
      this.retries = 0;
      this.second = second;
    }
    return now;
  }
}
