import { pipeline, type Readable, Transform } from 'node:stream';

/**
 * Relays `source` through a stream that keeps a copy of the bytes going by:
 * when the source ends within `limit` bytes, `done` gets the whole body. A
 * longer or broken answer is relayed all the same and not kept.
 */
export function keepCopy(
  source: Readable,
  limit: number,
  done: (body: Buffer) => void,
): Readable {
  let chunks: Buffer[] | undefined = [];
  let size = 0;
  const relay = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (chunks) {
        size += chunk.length;
        if (size > limit) chunks = undefined;
        else chunks.push(chunk);
      }
      callback(null, chunk);
    },
    flush(callback) {
      if (chunks) done(Buffer.concat(chunks, size));
      callback();
    },
  });
  // A source that breaks destroys the relay with its error (the client's
  // answer is cut as without the cache); a reader that leaves stops the source.
  pipeline(source, relay, () => {});
  return relay;
}
