// A drift monitor on the gateway's inference capture stream (CAPTURE_REDIS_STREAM, docs/capture.md):
// the share of POSITIVE answers per model version and hour, from the stream's response events.
//
//   node demo/capture-consumer.mjs [--redis redis://127.0.0.1:6379] [--stream api-gateway:capture] [--once]
//
// --stream is the full key: REDIS_KEY_PREFIX + CAPTURE_REDIS_STREAM. With --once it reads what the stream
// holds, prints one JSON document ({ "<hour>": { "<version>": { positive, answers, share } } }) and exits;
// without, it follows the stream (XREAD BLOCK) and prints a line per hour and version whenever it changes.
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';

const { values: args } = parseArgs({
  options: {
    redis: { type: 'string', default: 'redis://127.0.0.1:6379' },
    stream: { type: 'string', default: 'api-gateway:capture' },
    once: { type: 'boolean', default: false },
  },
});

/** hour -> version -> { positive, answers } */
const buckets = new Map();

/** Counts one stream entry; returns its bucket's key, or undefined when it is not a usable answer. */
function count(fields) {
  const event = {};
  for (let i = 0; i < fields.length; i += 2) event[fields[i]] = fields[i + 1];
  // Answers only, and only those the model gave (the gateway's own errors say nothing of drift).
  if (event.type !== 'org.kubeflow.serving.inference.response') return undefined;
  if (event.status !== '200' || event.data === undefined) return undefined;
  let answer;
  try {
    answer = JSON.parse(event.data);
  } catch {
    return undefined;
  }
  const hour = `${event.time.slice(0, 13)}:00Z`;
  const version = event.version ?? 'default';
  const byVersion = buckets.get(hour) ?? new Map();
  buckets.set(hour, byVersion);
  const bucket = byVersion.get(version) ?? { positive: 0, answers: 0 };
  byVersion.set(version, bucket);
  bucket.answers++;
  if (answer.sentiment === 'POSITIVE') bucket.positive++;
  return [hour, version];
}

const share = ({ positive, answers }) => Number((positive / answers).toFixed(4));

function summary() {
  const out = {};
  for (const [hour, byVersion] of [...buckets].sort()) {
    out[hour] = {};
    for (const [version, bucket] of [...byVersion].sort())
      out[hour][version] = { ...bucket, share: share(bucket) };
  }
  return out;
}

const redis = new Redis(args.redis, { maxRetriesPerRequest: 1 });
try {
  let last = '0';
  for (;;) {
    const read = await redis.xread(
      'COUNT',
      1000,
      ...(args.once ? [] : ['BLOCK', 5000]),
      'STREAMS',
      args.stream,
      last,
    );
    const entries = read?.[0]?.[1] ?? [];
    if (entries.length === 0 && args.once) break;
    const changed = new Set();
    for (const [id, fields] of entries) {
      last = id;
      const key = count(fields);
      if (key) changed.add(key.join(' '));
    }
    if (args.once) continue;
    for (const key of [...changed].sort()) {
      const [hour, version] = key.split(' ');
      const bucket = buckets.get(hour).get(version);
      console.log(
        `${hour} ${version}: ${bucket.positive}/${bucket.answers} POSITIVE (${(100 * share(bucket)).toFixed(1)} %)`,
      );
    }
  }
  console.log(JSON.stringify(summary(), null, 2));
} finally {
  redis.disconnect();
}
