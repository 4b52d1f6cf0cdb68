import type { IncomingHttpHeaders } from 'node:http';

/**
 * Which requests are captured: a share `rate` of them, drawn per request,
 * or, with a key header, by a hash of its value, so one user (session,
 * tenant) is always in or always out, and raising the rate only adds users.
 * A request without the header is drawn per request.
 */
export class CaptureSampler {
  constructor(
    private readonly rate: number,
    private readonly keyHeader: string | undefined,
  ) {}

  sampled(headers: IncomingHttpHeaders): boolean {
    if (this.rate >= 1) return true;
    if (this.keyHeader !== undefined) {
      const key = headers[this.keyHeader];
      if (typeof key === 'string') return keyFraction(key) < this.rate;
    }
    return Math.random() < this.rate;
  }
}

/**
 * Where `key` falls in [0, 1): FNV-1a (32 bits) over its UTF-16 code
 * units, then MurmurHash3's finalizer so every bit counts. Deliberately
 * not the model router's sticky hash (`hashUnit`, one mixing round less):
 * with STICKY_BY and CAPTURE_SAMPLE_KEY naming one header, the sample
 * must not be the users of one version.
 */
export function keyFraction(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 0x1_0000_0000;
}
