import { createHash } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  parsePointer,
  type Pointer,
  removeAt,
} from '../common/json-pointer.js';

/**
 * How a body went into its event: whole (`full`, redacted when asked), as
 * its size and SHA-256 only (`digest`: over CAPTURE_MAX_BODY_BYTES, or not
 * JSON while redaction is on), or not at all (`omitted`: a streamed answer,
 * or an answer the gateway made itself).
 */
export type BodyCapture = 'full' | 'digest' | 'omitted';

/** One body as an event carries it. */
export interface CapturedBody {
  readonly capture: BodyCapture;
  /** The event's data (full only; none for an empty body). */
  readonly data: Buffer | undefined;
  readonly contentType: string | undefined;
  /** The body's size as it came, when known. */
  readonly size: number | undefined;
  /** Hex SHA-256 of the body as it came (digest only). */
  readonly sha256: string | undefined;
}

/** Bytes hashed between two turns of the event loop: a large body never stalls it. */
const HASH_SLICE = 256 * 1024;

/**
 * Turns a body into what its event carries: redacted (CAPTURE_REDACT's
 * pointers removed from a JSON copy; the original is never touched) and
 * bounded (CAPTURE_MAX_BODY_BYTES).
 */
export class BodyCapturer {
  private readonly pointers: readonly Pointer[];

  constructor(
    private readonly maxBytes: number,
    redact: readonly string[],
  ) {
    this.pointers = redact.map(parsePointer);
  }

  /** A body that is not in the event, with its size when known. */
  static omitted(
    contentType: string | undefined,
    size: number | undefined,
  ): CapturedBody {
    return {
      capture: 'omitted',
      data: undefined,
      contentType,
      size,
      sha256: undefined,
    };
  }

  /** Async only when a body over the limit is hashed. */
  capture(
    body: Buffer | readonly Buffer[] | undefined,
    contentType: string | undefined,
  ): CapturedBody | Promise<CapturedBody> {
    const chunks =
      body === undefined ? [] : Buffer.isBuffer(body) ? [body] : body;
    let size = 0;
    for (const chunk of chunks) size += chunk.length;
    if (size > this.maxBytes) return digest(chunks, size, contentType);
    if (size === 0)
      return {
        capture: 'full',
        data: undefined,
        contentType,
        size,
        sha256: undefined,
      };
    const whole = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
    if (this.pointers.length === 0)
      return {
        capture: 'full',
        data: whole,
        contentType,
        size,
        sha256: undefined,
      };
    const redacted = this.redact(whole);
    if (!redacted) return digest(chunks, size, contentType);
    return {
      capture: 'full',
      data: redacted,
      contentType,
      size,
      sha256: undefined,
    };
  }

  /** The body without the redacted members; undefined when it is not JSON. */
  private redact(body: Buffer): Buffer | undefined {
    let document: unknown;
    try {
      document = JSON.parse(body.toString('utf8'));
    } catch {
      return undefined;
    }
    let removed = false;
    for (const pointer of this.pointers)
      removed = removeAt(document, pointer) || removed;
    return removed ? Buffer.from(JSON.stringify(document)) : body;
  }
}

async function digest(
  chunks: readonly Buffer[],
  size: number,
  contentType: string | undefined,
): Promise<CapturedBody> {
  const hash = createHash('sha256');
  let sinceTurn = 0;
  for (const chunk of chunks) {
    for (let at = 0; at < chunk.length; at += HASH_SLICE) {
      if (sinceTurn >= HASH_SLICE) {
        await nextTurn();
        sinceTurn = 0;
      }
      const slice = chunk.subarray(at, at + HASH_SLICE);
      hash.update(slice);
      sinceTurn += slice.length;
    }
  }
  return {
    capture: 'digest',
    data: undefined,
    contentType,
    size,
    sha256: hash.digest('hex'),
  };
}
