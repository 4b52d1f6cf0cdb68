import fc from 'fast-check';
import { requestIdFor } from './request-id.js';

const UUID_V4 =
  /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ALLOWED =
  'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-'.split(
    '',
  );

describe('requestIdFor', () => {
  it('keeps any id of 1..128 allowed characters', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...ALLOWED), { minLength: 1, maxLength: 128 }),
        (chars) => {
          const id = chars.join('');
          expect(requestIdFor(id)).toBe(id);
        },
      ),
    );
  });

  it('replaces anything else by a fresh UUID v4, never echoing the input', () => {
    const invalid = fc.oneof(
      fc.string({ minLength: 129, maxLength: 400 }),
      fc.string().filter((s) => !/^[A-Za-z0-9._:-]{1,128}$/.test(s)),
    );
    fc.assert(
      fc.property(invalid, (id) => {
        const chosen = requestIdFor(id);
        expect(chosen).toMatch(UUID_V4);
        expect(chosen).not.toBe(id);
      }),
    );
  });

  it('makes a new id when the header is missing or repeated', () => {
    expect(requestIdFor(undefined)).toMatch(UUID_V4);
    expect(requestIdFor(['a', 'b'])).toMatch(UUID_V4);
    expect(requestIdFor(undefined)).not.toBe(requestIdFor(undefined));
  });
});
