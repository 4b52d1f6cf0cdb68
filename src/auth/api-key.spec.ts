import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { keyDigest, keyId, matchKey, presentedKey } from './api-key.js';

const token = fc.stringMatching(/^[A-Za-z0-9._~+/=-]{1,64}$/);

describe('API keys', () => {
  it('names a key by the first 8 hex digits of its SHA-256', () => {
    expect(keyId('secret')).toBe(
      createHash('sha256').update('secret').digest('hex').slice(0, 8),
    );
  });

  it('matches a presented key exactly, never a prefix, suffix or other key (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(token, { minLength: 1, maxLength: 5 }),
        token,
        (keys, other) => {
          const entries = keys.map((key) => ({ key, digest: keyDigest(key) }));
          for (const key of keys) expect(matchKey(key, entries)?.key).toBe(key);
          const expected = keys.includes(other) ? other : undefined;
          expect(matchKey(other, entries)?.key).toBe(expected);
          expect(matchKey(keys[0] + 'x', entries)?.key).toBe(
            keys.includes(keys[0] + 'x') ? keys[0] + 'x' : undefined,
          );
        },
      ),
    );
  });

  it('takes the key from Authorization: Bearer, else X-API-Key (property)', () => {
    fc.assert(
      fc.property(token, token, (a, b) => {
        expect(presentedKey({ authorization: `Bearer ${a}` })).toBe(a);
        expect(presentedKey({ authorization: `bearer \t${a}  ` })).toBe(a);
        expect(presentedKey({ 'x-api-key': b })).toBe(b);
        expect(
          presentedKey({ authorization: `Bearer ${a}`, 'x-api-key': b }),
        ).toBe(a);
        expect(
          presentedKey({ authorization: `Basic ${a}`, 'x-api-key': b }),
        ).toBe(b);
      }),
    );
    expect(presentedKey({})).toBeUndefined();
    expect(presentedKey({ authorization: 'Bearer' })).toBeUndefined();
    expect(presentedKey({ authorization: 'Bearer a b' })).toBeUndefined();
    expect(presentedKey({ 'x-api-key': '  ' })).toBeUndefined();
  });
});
