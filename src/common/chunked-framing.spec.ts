import fc from 'fast-check';
import {
  bodyStart,
  ChunkedFraming,
  type FramingVerdict,
} from './chunked-framing.js';

const LIMIT = 1024;

/** Feeds `body` cut at `cuts`; returns each read's verdict up to the first final one. */
function feedSplit(
  body: Buffer,
  cuts: number[],
  limit = LIMIT,
): FramingVerdict[] {
  const framing = new ChunkedFraming(limit);
  const verdicts: FramingVerdict[] = [];
  let from = 0;
  for (const to of [...cuts, body.length]) {
    const verdict = framing.feed(body.subarray(from, to));
    verdicts.push(verdict);
    if (verdict !== 'more') break;
    from = to;
  }
  return verdicts;
}

/** A valid chunked body of these chunk sizes (total within the limit), with optional extensions, trailers, LF-only lines. */
const validBody = fc
  .record({
    sizes: fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 6 }),
    upper: fc.boolean(),
    zeros: fc.integer({ min: 0, max: 3 }),
    extension: fc.constantFrom('', ';a=1', ';name="q v"', ' ;x'),
    trailers: fc.constantFrom('', 'X-Sum: 1\r\n', 'A: b\r\nC:d\r\n'),
    bareLf: fc.boolean(),
    data: fc.constantFrom('x', '\r\n', '0\r\n\r\n', 'FFFFFFFF\r\n'),
  })
  .filter(({ sizes }) => sizes.reduce((a, b) => a + b, 0) <= LIMIT)
  .map(({ sizes, upper, zeros, extension, trailers, bareLf, data }) => {
    const eol = bareLf ? '\n' : '\r\n';
    let text = '';
    for (const size of sizes) {
      const hex = size.toString(16);
      text += '0'.repeat(zeros) + (upper ? hex.toUpperCase() : hex);
      text += extension + eol + data.repeat(size).slice(0, size) + eol;
    }
    return Buffer.from(`${text}0${extension}${eol}${trailers}${eol}`, 'latin1');
  });

describe('ChunkedFraming', () => {
  it('never says over for a valid body within the limit, cut at every byte', () => {
    fc.assert(
      fc.property(validBody, (body) => {
        for (let cut = 0; cut <= body.length; cut++) {
          expect(feedSplit(body, [cut]).at(-1)).toBe('done');
        }
        const single = Array.from({ length: body.length }, (_, i) => i + 1);
        expect(feedSplit(body, single).at(-1)).toBe('done');
      }),
      { numRuns: 150 },
    );
  });

  it('never says over for a valid body within the limit, cut at random positions', () => {
    fc.assert(
      fc.property(
        validBody.chain((body) =>
          fc.tuple(
            fc.constant(body),
            fc.uniqueArray(fc.integer({ min: 1, max: body.length - 1 }), {
              maxLength: 20,
            }),
          ),
        ),
        ([body, cuts]) => {
          const verdicts = feedSplit(
            body,
            cuts.sort((a, b) => a - b),
          );
          expect(verdicts.at(-1)).toBe('done');
          expect(verdicts).not.toContain('over');
        },
      ),
    );
  });

  it('says done exactly at the end of the body: bytes after it are not read', () => {
    const body = Buffer.from('3\r\nabc\r\n0\r\n\r\nGARBAGE', 'latin1');
    const framing = new ChunkedFraming(LIMIT);
    expect(framing.feed(body)).toBe('done');
    expect(framing.end).toBe(body.indexOf('GARBAGE'));
  });

  it('says over as soon as a size line announces more than the limit, before its CRLF', () => {
    expect(feedSplit(Buffer.from('7FFFFFFF'), [])).toEqual(['over']);
    expect(feedSplit(Buffer.from('401'), [1, 2])).toEqual([
      'more',
      'more',
      'over',
    ]);
    expect(new ChunkedFraming(LIMIT).feed(Buffer.from('400\r\n'))).toBe('more');
  });

  it('says over when the sizes together cross the limit', () => {
    const body = Buffer.from(
      `200\r\n${'a'.repeat(0x200)}\r\n201\r\n`,
      'latin1',
    );
    expect(new ChunkedFraming(LIMIT).feed(body)).toBe('over');
    const exact = Buffer.from(
      `200\r\n${'a'.repeat(0x200)}\r\n200\r\n`,
      'latin1',
    );
    expect(new ChunkedFraming(LIMIT).feed(exact)).toBe('more');
  });

  it('is lost at a byte a chunked body cannot have there', () => {
    for (const text of [
      'ZZ\r\n',
      '\r\n',
      ' 5\r\n',
      '3\rx',
      '3\r\nabcX',
      '3\r\nabc\rX',
    ]) {
      expect(new ChunkedFraming(LIMIT).feed(Buffer.from(text))).toBe('lost');
    }
  });

  it('starts at the given offset', () => {
    const buf = Buffer.from('HEADERS7FFFFFFF', 'latin1');
    expect(new ChunkedFraming(LIMIT).feed(buf, 7)).toBe('over');
  });
});

describe('bodyStart', () => {
  const head =
    'POST /predict?x=1 HTTP/1.1\r\nHost: gw\r\nX-A:\t v \r\nTransfer-Encoding: chunked\r\n\r\n';
  const request = {
    method: 'POST',
    url: '/predict?x=1',
    httpVersion: '1.1',
    rawHeaders: ['Host', 'gw', 'X-A', 'v', 'Transfer-Encoding', 'chunked'],
  };

  it('finds the body after the exact header section', () => {
    const buf = Buffer.from(`${head}7FFFFFFF\r\n`, 'latin1');
    expect(bodyStart(buf, request)).toBe(head.length);
    expect(bodyStart(Buffer.from(head, 'latin1'), request)).toBe(head.length);
    expect(bodyStart(Buffer.from(`\r\n${head}`, 'latin1'), request)).toBe(
      head.length + 2,
    );
  });

  it('finds it from a known message start, twins allowed there', () => {
    const get = 'GET / HTTP/1.1\r\nHost: gw\r\n\r\n';
    const buf = Buffer.from(`${get}${head}5\r\n${head}`, 'latin1');
    expect(bodyStart(buf, request, get.length, false)).toBe(
      get.length + head.length,
    );
    expect(bodyStart(buf, request, get.length, true)).toBe(-1);
  });

  it('gives up unless the read begins with the whole section of this very request', () => {
    const cases = [
      `GET / HTTP/1.1\r\nHost: gw\r\n\r\n${head}5\r\n`, // a pipelined message before it
      head.slice(10), // headers begun in an earlier read
      head.slice(0, -2), // not complete
      head.replace('X-A:', 'X-B:'),
      head.replace('Host: gw\r\n', ''),
      head.replace('\r\n\r\n', '\r\nX-More: 1\r\n\r\n'),
      head.replace('HTTP/1.1', 'HTTP/1.0'),
      `${head}5\r\n${head}\r\n`, // a twin later in the read (pipelined, or inside the body)
      // The same section with other whitespace later on: Node's trimmed
      // values cannot tell which of the two it parsed.
      `${head}7FFFFFFF\r\n${head.replace('Host: gw', 'Host:gw')}5\r\n`,
    ];
    for (const text of cases) {
      expect(bodyStart(Buffer.from(text, 'latin1'), request)).toBe(-1);
    }
  });
});
