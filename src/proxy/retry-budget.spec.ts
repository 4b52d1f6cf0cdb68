import { RetryBudget } from './retry-budget.js';

describe('RetryBudget', () => {
  let now: number;
  const clock = () => now;

  beforeEach(() => {
    now = 1_000_000; // the start of a second
  });

  function takeAll(budget: RetryBudget): number {
    let taken = 0;
    while (budget.take()) taken++;
    return taken;
  }

  it('allows the floor of 3 per second even without traffic', () => {
    expect(takeAll(new RetryBudget(20, 3, clock))).toBe(3);
  });

  it('allows the percentage of the requests of the last second', () => {
    const budget = new RetryBudget(20, 3, clock);
    for (let i = 0; i < 100; i++) budget.countRequest();
    expect(takeAll(budget)).toBe(20);
  });

  it('lets the previous second weigh in for the part still inside the window', () => {
    const budget = new RetryBudget(20, 3, clock);
    for (let i = 0; i < 100; i++) budget.countRequest();
    expect(takeAll(budget)).toBe(20);
    now += 1500; // half of the previous second is still in the window
    // requests 100 * 0.5 = 50 -> 10 allowed; retries 20 * 0.5 = 10 already spent
    expect(takeAll(budget)).toBe(0);
    now += 400; // 10 % of it left: requests 10 -> floor 3; retries 2 spent
    expect(takeAll(budget)).toBe(1);
  });

  it('forgets everything after a quiet second', () => {
    const budget = new RetryBudget(20, 3, clock);
    for (let i = 0; i < 100; i++) budget.countRequest();
    takeAll(budget);
    now += 2000;
    expect(takeAll(budget)).toBe(3);
  });
});
