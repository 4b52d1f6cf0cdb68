import fc from 'fast-check';
import { canonicalJson, MAX_DEPTH } from './canonical-json.js';

describe('canonicalJson', () => {
  it('sorts keys at every depth and drops insignificant whitespace', () => {
    const pretty = `{
      "request" : { "text": "a b", "request_id" : null },
      "options": [ 1 , { "z": true, "a": false } ]
    }`;
    expect(canonicalJson(pretty)).toBe(
      '{"options":[1,{"a":false,"z":true}],"request":{"request_id":null,"text":"a b"}}',
    );
    expect(canonicalJson('{"request":{"text":"a"}}')).toBe(
      canonicalJson('{ "request" : {\n  "text" : "a"\n} }'),
    );
  });

  it('keeps strings and numbers as written', () => {
    expect(canonicalJson('{"a":1.0,"b":"x\\"}y","c":1e3}')).toBe(
      '{"a":1.0,"b":"x\\"}y","c":1e3}',
    );
    expect(canonicalJson('[1]')).not.toBe(canonicalJson('[1.0]'));
    expect(canonicalJson('12345678901234567890')).not.toBe(
      canonicalJson('12345678901234567891'),
    );
  });

  it('has no canonical form for a name given twice, however it is escaped', () => {
    expect(canonicalJson('{"a":1,"a":2}')).toBeUndefined();
    const a = '{"request":{"\\u0074ext":"A","text":"B"}}';
    const b = '{"request":{"text":"B","\\u0074ext":"A"}}';
    expect(canonicalJson(a)).toBeUndefined();
    expect(canonicalJson(b)).toBeUndefined();
    expect(canonicalJson('{"\\u0074ext":"A","texts":"B"}')).toBe(
      '{"\\u0074ext":"A","texts":"B"}',
    );
  });

  it(`has no canonical form past ${MAX_DEPTH} levels, and never overflows the stack`, () => {
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    expect(canonicalJson(deep(MAX_DEPTH))).toBe(deep(MAX_DEPTH));
    expect(canonicalJson(deep(MAX_DEPTH + 1))).toBeUndefined();
    expect(canonicalJson(deep(5000))).toBeUndefined();
    expect(canonicalJson(`{"a":${deep(MAX_DEPTH)}}`)).toBeUndefined();
  });

  it('answers undefined for what is not JSON', () => {
    expect(canonicalJson('{"a":')).toBeUndefined();
    expect(canonicalJson('text')).toBeUndefined();
    expect(canonicalJson('')).toBeUndefined();
  });

  it('is a fixed point, ignores pretty-printing and means the same value as its input', () => {
    fc.assert(
      fc.property(fc.json(), (text) => {
        const canonical = canonicalJson(text)!;
        expect(canonicalJson(canonical)).toBe(canonical);
        const pretty = JSON.stringify(JSON.parse(text), null, 2);
        expect(canonicalJson(pretty)).toBe(canonical);
        expect(JSON.parse(canonical)).toEqual(JSON.parse(text));
      }),
    );
  });
});
