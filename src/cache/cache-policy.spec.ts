import { freshnessMs, requestDirective } from './cache-policy.js';

const TTL = 60_000;
const KEYED = new Set(['content-type', 'x-model']);
const NOW = Date.parse('2026-12-07T12:00:00Z');

describe('cache policy (RFC 9111)', () => {
  it('keeps an answer for CACHE_TTL_SECONDS when it states no lifetime', () => {
    expect(freshnessMs({}, TTL, KEYED, NOW)).toBe(TTL);
    expect(freshnessMs({ 'cache-control': 'public' }, TTL, KEYED, NOW)).toBe(
      TTL,
    );
  });

  it('takes s-maxage, else max-age, else Expires - Date, less Age, capped at the TTL', () => {
    const at = (headers: Record<string, string>) =>
      freshnessMs(headers, TTL, KEYED, NOW);
    expect(at({ 'cache-control': 'max-age=10' })).toBe(10_000);
    expect(at({ 'cache-control': 'max-age=10, s-maxage=20' })).toBe(20_000);
    expect(at({ 'cache-control': 'max-age=600' })).toBe(TTL);
    expect(at({ 'cache-control': 'max-age=10', age: '4' })).toBe(6_000);
    expect(at({ 'cache-control': 'max-age=10', age: '40' })).toBe(0);
    expect(
      at({
        date: 'Mon, 07 Dec 2026 12:00:00 GMT',
        expires: 'Mon, 07 Dec 2026 12:00:30 GMT',
      }),
    ).toBe(30_000);
    expect(at({ expires: 'Mon, 07 Dec 2026 12:00:05 GMT' })).toBe(5_000);
    expect(at({ expires: 'yesterday' })).toBe(0);
  });

  it('stores nothing the answer forbids or that depends on what the key leaves out', () => {
    const refused: Record<string, string>[] = [
      { 'cache-control': 'no-store' },
      { 'cache-control': 'private' },
      { 'cache-control': 'no-cache' },
      { 'cache-control': 'max-age=0' },
      { pragma: 'no-cache' },
      { 'set-cookie': 'a=b' },
      { 'content-encoding': 'gzip' },
      { vary: '*' },
      { vary: 'Accept, *' },
      { vary: 'Authorization' },
    ];
    for (const headers of refused)
      expect([headers, freshnessMs(headers, TTL, KEYED, NOW)]).toEqual([
        headers,
        0,
      ]);
    expect(
      freshnessMs({ vary: 'Content-Type, X-Model' }, TTL, KEYED, NOW),
    ).toBe(TTL);
    expect(freshnessMs({ vary: 'Accept-Encoding' }, TTL, KEYED, NOW)).toBe(TTL);
    // Pragma speaks only when Cache-Control does not.
    expect(
      freshnessMs(
        { pragma: 'no-cache', 'cache-control': 'max-age=5' },
        TTL,
        KEYED,
        NOW,
      ),
    ).toBe(5_000);
  });

  it('reads what a request asks', () => {
    expect(requestDirective({})).toBeUndefined();
    expect(requestDirective({ 'cache-control': 'no-store' })).toEqual({
      kind: 'no-store',
    });
    for (const headers of [
      { 'cache-control': 'no-cache' },
      { 'cache-control': 'max-age=0' },
      { pragma: 'no-cache' },
    ])
      expect(requestDirective(headers)).toEqual({ kind: 'no-cache' });
    expect(requestDirective({ 'cache-control': 'max-age=30' })).toEqual({
      kind: 'max-age',
      seconds: 30,
    });
    expect(
      requestDirective({ 'cache-control': 'max-stale', pragma: 'no-cache' }),
    ).toBeUndefined();
  });
});
