import { ExchangeRing } from './exchange-ring.js';

/** Adds a record of `length` bytes filled with `byte`; whether it fit. */
const add = (ring: ExchangeRing, length: number, byte: number) =>
  ring.add(length, (target, at) => target.fill(byte, at, at + length));

describe('ExchangeRing', () => {
  it('hands records out oldest first, refuses one that does not fit, and wraps around once the oldest are done', () => {
    const ring = new ExchangeRing(100);
    expect(add(ring, 40, 1)).toBe(true);
    expect(add(ring, 40, 2)).toBe(true);
    expect(add(ring, 40, 3)).toBe(false);
    expect(ring.used).toBe(80);
    const a = ring.take()!;
    const b = ring.take()!;
    expect([...a.bytes].every((x) => x === 1)).toBe(true);
    expect(b.bytes.length).toBe(40);
    expect(ring.take()).toBeUndefined();
    // Done out of order: b's space waits for a's.
    ring.done(b.record);
    expect(add(ring, 30, 4)).toBe(false);
    ring.done(a.record);
    expect(ring.used).toBe(0);
    // Empty again: from the start.
    expect(add(ring, 60, 5)).toBe(true);
    expect(add(ring, 30, 6)).toBe(true);
    const c = ring.take()!;
    ring.done(c.record);
    // 10 bytes left above; 60 free below: it wraps.
    expect(add(ring, 50, 7)).toBe(true);
    expect(add(ring, 20, 8)).toBe(false);
    const d = ring.take()!;
    const e = ring.take()!;
    expect([...d.bytes].every((x) => x === 6)).toBe(true);
    expect([...e.bytes].every((x) => x === 7)).toBe(true);
    expect(e.bytes.byteOffset - d.bytes.byteOffset).toBe(-60);
    ring.done(d.record);
    // The oldest is back below: the upper part is free.
    expect(add(ring, 40, 9)).toBe(true);
    expect(ring.used).toBe(90);
  });

  it('gives up queued records on clear, keeping those handed out', () => {
    const ring = new ExchangeRing(1000);
    for (let i = 0; i < 5; i++) add(ring, 100, i);
    const first = ring.take()!;
    expect(ring.clear()).toBe(4);
    expect(ring.queued).toBe(0);
    expect(ring.used).toBe(100);
    ring.done(first.record);
    expect(ring.used).toBe(0);
  });

  it('keeps record numbers right across many records', () => {
    const ring = new ExchangeRing(64 * 1024);
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 3000; i++) expect(add(ring, 8, i % 256)).toBe(true);
      const taken = [];
      for (let i = 0; i < 3000; i++) taken.push(ring.take()!);
      expect(taken[2999].bytes[0]).toBe(2999 % 256);
      for (const { record } of taken.reverse()) ring.done(record);
      expect(ring.used).toBe(0);
    }
  });
});
