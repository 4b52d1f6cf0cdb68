import { createHash } from 'node:crypto';
import { BodyCapturer } from './capture-body.js';

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('BodyCapturer', () => {
  it('keeps a body as it came, a chunked one as one Buffer', () => {
    const body = json({ request: { text: 'hi' } });
    const capturer = new BodyCapturer(1024, []);
    expect(capturer.capture(body, 'application/json')).toEqual({
      capture: 'full',
      data: body,
      contentType: 'application/json',
      size: body.length,
      sha256: undefined,
    });
    const chunks = [body.subarray(0, 5), body.subarray(5)];
    const whole = capturer.capture(chunks, undefined);
    expect('data' in whole && whole.data?.equals(body)).toBe(true);
    expect(capturer.capture(undefined, undefined)).toMatchObject({
      capture: 'full',
      data: undefined,
      size: 0,
    });
  });

  it('removes the redacted members and array items from a copy, leaving the original and an unmatched body alone', () => {
    const document = { request: { text: 'secret', texts: ['a', 'b'], id: 1 } };
    const body = json(document);
    const capturer = new BodyCapturer(1024, [
      '/request/text',
      '/request/texts/0',
      '/request/texts/9',
      '/missing/deep',
    ]);
    const captured = capturer.capture(body, 'application/json');
    expect(JSON.parse(String((captured as { data: Buffer }).data))).toEqual({
      request: { texts: ['b'], id: 1 },
    });
    expect(JSON.parse(body.toString())).toEqual(document);
    const other = json({ other: true });
    expect((capturer.capture(other, undefined) as { data: Buffer }).data).toBe(
      other,
    );
  });

  it('captures a body over the limit, or one it cannot redact, as its size and SHA-256', async () => {
    const big = Buffer.alloc(600 * 1024, 'x');
    const chunks = [big.subarray(0, 1000), big.subarray(1000)];
    const digest = await new BodyCapturer(1024, []).capture(
      chunks,
      'text/plain',
    );
    expect(digest).toEqual({
      capture: 'digest',
      data: undefined,
      contentType: 'text/plain',
      size: big.length,
      sha256: createHash('sha256').update(big).digest('hex'),
    });
    const notJson = Buffer.from('text=secret');
    await expect(
      new BodyCapturer(1024, ['/text']).capture(notJson, undefined),
    ).resolves.toMatchObject({ capture: 'digest', size: notJson.length });
  });
});
