import type { IncomingMessage } from 'node:http';

const CR = 0x0d;
const LF = 0x0a;

const enum State {
  SizeStart,
  Size,
  Extension,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  Trailer,
  EndLf,
}

/** What the bytes fed so far say about a chunked body. */
export type FramingVerdict = 'more' | 'over' | 'done' | 'lost';

/**
 * Follows the framing of a chunked body (RFC 9112 §7.1) from its first byte,
 * across reads of any size, adding up the chunk sizes it announces: `over`
 * as soon as they exceed `limit` (a size line can announce 2 GB in 10 bytes),
 * `done` at the end of the trailer section, `lost` at any byte it does not
 * expect (Node's parser then answers the malformed body itself). Data bytes
 * are skipped, never scanned.
 */
export class ChunkedFraming {
  private state = State.SizeStart;
  private announced = 0;
  private size = 0;
  private remaining = 0;
  /** After `done`: the offset, in the last buffer fed, just past the body. */
  end = -1;

  constructor(private readonly limit: number) {}

  feed(buf: Uint8Array, start = 0): FramingVerdict {
    let i = start;
    while (i < buf.length) {
      if (this.state === State.Data) {
        const take = Math.min(this.remaining, buf.length - i);
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.state = State.DataCr;
        continue;
      }
      const verdict = this.step(buf[i]);
      i++;
      if (verdict === 'done') this.end = i;
      if (verdict !== 'more') return verdict;
    }
    return 'more';
  }

  private step(byte: number): FramingVerdict {
    switch (this.state) {
      case State.SizeStart:
      case State.Size: {
        const digit = hexValue(byte);
        if (digit >= 0) {
          this.size = this.size * 16 + digit;
          this.state = State.Size;
          return this.announced + this.size > this.limit ? 'over' : 'more';
        }
        if (this.state === State.SizeStart) return 'lost';
        if (byte === CR) this.state = State.SizeLf;
        else if (byte === LF) this.endSizeLine();
        else this.state = State.Extension;
        return 'more';
      }
      case State.Extension:
        if (byte === CR) this.state = State.SizeLf;
        else if (byte === LF) this.endSizeLine();
        return 'more';
      case State.SizeLf:
        if (byte !== LF) return 'lost';
        this.endSizeLine();
        return 'more';
      case State.DataCr:
        if (byte === CR) this.state = State.DataLf;
        else if (byte === LF) this.state = State.SizeStart;
        else return 'lost';
        return 'more';
      case State.DataLf:
        if (byte !== LF) return 'lost';
        this.state = State.SizeStart;
        return 'more';
      case State.TrailerStart:
        if (byte === LF) return 'done';
        this.state = byte === CR ? State.EndLf : State.Trailer;
        return 'more';
      case State.Trailer:
        if (byte === LF) this.state = State.TrailerStart;
        return 'more';
      case State.EndLf:
        return byte === LF ? 'done' : 'lost';
      default:
        return 'lost';
    }
  }

  private endSizeLine(): void {
    this.announced += this.size;
    this.remaining = this.size;
    this.size = 0;
    this.state = this.remaining === 0 ? State.TrailerStart : State.Data;
  }
}

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

type RequestHead = Pick<
  IncomingMessage,
  'method' | 'url' | 'httpVersion' | 'rawHeaders'
>;

/**
 * Where the body of `request` starts in `buf`, when `buf` holds, from `from`
 * (after blank lines), the request's whole header section as Node parsed it
 * (request line, then each raw header in order, then an empty line); else -1.
 * Node trims header values, so `Host: x` and `Host:x` both match: with
 * `unique`, also -1 when such a section occurs again later in `buf` (a
 * pipelined twin, or header text inside a body), for a read whose start is
 * not known to be a message's start.
 */
export function bodyStart(
  buf: Buffer,
  request: RequestHead,
  from = 0,
  unique = true,
): number {
  let pos = from;
  while (pos < buf.length && (buf[pos] === CR || buf[pos] === LF)) pos++;
  const requestLine = `${request.method} ${request.url} HTTP/${request.httpVersion}\r\n`;
  const end = headEnd(buf, request, requestLine, pos);
  if (end === -1 || !unique) return end;
  for (
    let twin = buf.indexOf(requestLine, pos + 1, 'latin1');
    twin !== -1;
    twin = buf.indexOf(requestLine, twin + 1, 'latin1')
  ) {
    if (headEnd(buf, request, requestLine, twin) !== -1) return -1;
  }
  return end;
}

/** The end of `request`'s header section when it starts at `pos` in `buf`, else -1. */
function headEnd(
  buf: Buffer,
  request: RequestHead,
  requestLine: string,
  pos: number,
): number {
  if (buf.toString('latin1', pos, pos + requestLine.length) !== requestLine)
    return -1;
  pos += requestLine.length;
  const raw = request.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const lf = buf.indexOf(LF, pos);
    if (lf < 1 || buf[lf - 1] !== CR) return -1;
    const line = buf.toString('latin1', pos, lf - 1);
    const name = raw[i];
    if (line.charCodeAt(name.length) !== 0x3a || !line.startsWith(name))
      return -1;
    if (trimWhitespace(line.slice(name.length + 1)) !== raw[i + 1]) return -1;
    pos = lf + 1;
  }
  if (buf[pos] !== CR || buf[pos + 1] !== LF) return -1;
  return pos + 2;
}

function trimWhitespace(value: string): string {
  return value.replace(/^[ \t]+|[ \t]+$/g, '');
}
