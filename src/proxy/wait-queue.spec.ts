import type { Priority } from '../common/priority.js';
import { WaitQueue } from './wait-queue.js';

const item = (priority: Priority, name: string) => ({ priority, name });

describe('WaitQueue', () => {
  it('serves critical, then standard, then sheddable, each in arrival order', () => {
    const queue = new WaitQueue<ReturnType<typeof item>>();
    for (const [p, n] of [
      ['sheddable', 's1'],
      ['standard', 'n1'],
      ['critical', 'c1'],
      ['sheddable', 's2'],
      ['critical', 'c2'],
    ] as const)
      queue.push(item(p, n), 0);
    expect(
      queue
        .inOrder()
        .flat()
        .map((i) => i.name),
    ).toEqual(['c1', 'c2', 'n1', 's1', 's2']);
    expect(queue.length).toBe(5);
    expect(queue.ahead('critical')).toBe(2);
    expect(queue.ahead('standard')).toBe(3);
    expect(queue.ahead('sheddable')).toBe(5);
  });

  it('names the newest of the lowest class below a newcomer, never its own class or above', () => {
    const queue = new WaitQueue<ReturnType<typeof item>>();
    const n1 = item('standard', 'n1');
    const s1 = item('sheddable', 's1');
    const s2 = item('sheddable', 's2');
    for (const i of [n1, s1, s2]) queue.push(i, 0);
    expect(queue.newestBelow('critical')).toBe(s2);
    expect(queue.newestBelow('standard')).toBe(s2);
    expect(queue.newestBelow('sheddable')).toBeUndefined();
    expect(queue.remove(s2)).toBe(true);
    expect(queue.remove(s2)).toBe(false);
    expect(queue.remove(s1)).toBe(true);
    expect(queue.newestBelow('critical')).toBe(n1);
    expect(queue.newestBelow('standard')).toBeUndefined();
  });

  it('refuses sheddable requests from half full, or while a higher class waits or waited within the window', () => {
    const queue = new WaitQueue<ReturnType<typeof item>>();
    expect(queue.refusesSheddable(4, 20, 0)).toBeUndefined();
    const s = [item('sheddable', 'a'), item('sheddable', 'b')];
    for (const i of s) queue.push(i, 0);
    expect(queue.refusesSheddable(4, 20, 0)).toMatch(/half full \(2 of 4\)/);
    for (const i of s) queue.remove(i);
    const c = item('critical', 'c');
    queue.push(c, 100);
    expect(queue.refusesSheddable(4, 20, 100)).toMatch(/higher class/);
    queue.remove(c);
    expect(queue.refusesSheddable(4, 20, 110)).toMatch(/higher class/);
    // Even with a free slot (empty queue) a sheddable request yields within the window.
    expect(queue.busyAboveSheddable(20, 110)).toBe(true);
    expect(queue.refusesSheddable(4, 20, 121)).toBeUndefined();
    expect(queue.busyAboveSheddable(20, 121)).toBe(false);
  });
});
