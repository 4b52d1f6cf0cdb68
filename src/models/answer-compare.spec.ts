import { sameAnswer } from './answer-compare.js';

const answer = (body: unknown, status = 200) => ({
  status,
  body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
});

describe('sameAnswer', () => {
  const primary = answer({
    sentiment: 'POSITIVE',
    confidence: 0.9,
    meta: { label: 1 },
  });

  it('compares the named fields only, dotted paths included', () => {
    const shadow = answer({
      sentiment: 'POSITIVE',
      confidence: 0.7,
      meta: { label: 1 },
    });
    expect(sameAnswer(primary, shadow, ['sentiment', 'meta.label'])).toBe(true);
    expect(sameAnswer(primary, shadow, ['confidence'])).toBe(false);
    expect(
      sameAnswer(primary, answer({ sentiment: 'NEGATIVE' }), ['sentiment']),
    ).toBe(false);
  });

  it('wants the same bytes without fields, and the same status always', () => {
    expect(sameAnswer(primary, answer(primary.body.toString()), [])).toBe(true);
    expect(
      sameAnswer(
        primary,
        answer({ ...JSON.parse(primary.body.toString()) }, 500),
        ['sentiment'],
      ),
    ).toBe(false);
    expect(
      sameAnswer(primary, answer('{"sentiment": "POSITIVE"'), ['sentiment']),
    ).toBe(false);
  });
});
