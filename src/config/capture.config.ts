import { registerAs } from '@nestjs/config';
import { z } from 'zod';
import { jsonPointer } from './batching.config.js';
import { configError, intInRange, parseEnv } from './env.js';

export const CAPTURE_ENV_DEFAULTS = {
  CAPTURE_SAMPLE_RATE: '0',
  CAPTURE_SAMPLE_KEY: '',
  CAPTURE_URL: '',
  CAPTURE_HEADERS: '',
  CAPTURE_HEADERS_FILE: '',
  CAPTURE_REDIS_STREAM: '',
  CAPTURE_REDIS_MAXLEN: '100000',
  CAPTURE_REDACT: '',
  CAPTURE_MAX_BODY_BYTES: String(64 * 1024),
  CAPTURE_BUFFER_BYTES: String(8 * 1024 * 1024),
  CAPTURE_TIMEOUT_MS: '2000',
  CAPTURE_RETRIES: '3',
};

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Headers a sink request sets itself: CAPTURE_HEADERS may not replace them. */
const OWN_HEADERS =
  /^(ce-.*|content-type|content-length|host|connection|transfer-encoding)$/;

const rate = z
  .string()
  .trim()
  .regex(/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/, 'a number from 0 to 1')
  .transform(Number);

const httpUrl = z
  .string()
  .trim()
  .regex(/^$|^https?:\/\/[^/\s]+/, 'an http:// or https:// URL');

const headerName = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^$|^[!#$%&'*+.^_`|~0-9a-z-]+$/, 'an HTTP header name');

const pointerList = z
  .string()
  .transform((raw) =>
    raw
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean),
  )
  .pipe(z.array(jsonPointer.min(1, 'a JSON pointer naming a member')));

/**
 * Sink headers as OTEL_EXPORTER_OTLP_HEADERS writes them: `name=value`
 * pairs separated by commas (or newlines, in a file), values
 * percent-decoded; lower-cased names. Throws a one-line error naming `from`.
 */
export function parseSinkHeaders(
  text: string,
  from: string,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of text.split(/[,\n]/)) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    const name = pair.slice(0, Math.max(eq, 0)).trim().toLowerCase();
    if (eq <= 0 || !HEADER_NAME.test(name) || OWN_HEADERS.test(name))
      throw configError(
        { [from]: '(hidden: it may hold a credential)' },
        'name=value pairs separated by commas, e.g. Authorization=Bearer%20token (not ce-*, Content-Type, Host)',
      );
    let value = pair.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      // Not percent-encoded after all: kept verbatim.
    }
    headers[name] = value;
  }
  return headers;
}

export const captureConfig = registerAs('capture', () => {
  const env = parseEnv(
    {
      CAPTURE_SAMPLE_RATE: rate,
      CAPTURE_SAMPLE_KEY: headerName,
      CAPTURE_URL: httpUrl,
      CAPTURE_HEADERS: z.string(),
      CAPTURE_HEADERS_FILE: z.string().trim(),
      CAPTURE_REDIS_STREAM: z
        .string()
        .trim()
        .max(200, 'a Redis key of at most 200 characters'),
      CAPTURE_REDIS_MAXLEN: intInRange(1, 1_000_000_000),
      CAPTURE_REDACT: pointerList,
      CAPTURE_MAX_BODY_BYTES: intInRange(0, 1024 ** 3),
      CAPTURE_BUFFER_BYTES: intInRange(64 * 1024, 1024 ** 3),
      CAPTURE_TIMEOUT_MS: intInRange(1, 60_000),
      CAPTURE_RETRIES: intInRange(0, 10),
    },
    CAPTURE_ENV_DEFAULTS,
  );
  const enabled = env.CAPTURE_SAMPLE_RATE > 0;
  if (enabled && env.CAPTURE_URL === '' && env.CAPTURE_REDIS_STREAM === '')
    throw configError(
      {
        CAPTURE_SAMPLE_RATE: env.CAPTURE_SAMPLE_RATE,
        CAPTURE_URL: undefined,
        CAPTURE_REDIS_STREAM: undefined,
      },
      'a sink for the captured events: CAPTURE_URL (CloudEvents over HTTP) or CAPTURE_REDIS_STREAM (a Redis stream), or both',
    );
  if (env.CAPTURE_HEADERS !== '' && env.CAPTURE_HEADERS_FILE !== '')
    throw configError(
      {
        CAPTURE_HEADERS: '(hidden: it may hold a credential)',
        CAPTURE_HEADERS_FILE: env.CAPTURE_HEADERS_FILE,
      },
      'at most one of them',
    );
  // Two exchanges with both bodies at the limit fit in each of two sinks' shares.
  if (env.CAPTURE_BUFFER_BYTES < 4 * env.CAPTURE_MAX_BODY_BYTES + 16 * 1024)
    throw configError(
      {
        CAPTURE_BUFFER_BYTES: env.CAPTURE_BUFFER_BYTES,
        CAPTURE_MAX_BODY_BYTES: env.CAPTURE_MAX_BODY_BYTES,
      },
      'CAPTURE_BUFFER_BYTES >= 4 x CAPTURE_MAX_BODY_BYTES + 16384',
    );
  return {
    /** Share of prediction requests captured; 0: capture off (no stage). */
    sampleRate: env.CAPTURE_SAMPLE_RATE,
    /** A request header whose value decides the sample (by hash); undefined: per request. */
    sampleKey: env.CAPTURE_SAMPLE_KEY || undefined,
    /** CloudEvents receiver (binary content mode, one POST per event). */
    url: env.CAPTURE_URL || undefined,
    /** Extra headers of each POST to CAPTURE_URL (an authenticated sink). */
    headers: parseSinkHeaders(env.CAPTURE_HEADERS, 'CAPTURE_HEADERS'),
    /** The same, read from a file (a mounted Secret), re-read when it changes. */
    headersFile: env.CAPTURE_HEADERS_FILE || undefined,
    /** Redis stream key (after REDIS_KEY_PREFIX) that gets one entry per event. */
    redisStream: env.CAPTURE_REDIS_STREAM || undefined,
    redisMaxLen: env.CAPTURE_REDIS_MAXLEN,
    /** JSON pointers removed from captured bodies (never from what is forwarded). */
    redact: env.CAPTURE_REDACT,
    /** A body over it is captured as its size and SHA-256 only. */
    maxBodyBytes: env.CAPTURE_MAX_BODY_BYTES,
    /** Captured bytes held for delivery at most; past it, events are dropped. */
    bufferBytes: env.CAPTURE_BUFFER_BYTES,
    /** One delivery attempt's limit. */
    timeoutMs: env.CAPTURE_TIMEOUT_MS,
    /** Attempts after the first before an event is dropped. */
    retries: env.CAPTURE_RETRIES,
  };
});

export type CaptureConfig = ReturnType<typeof captureConfig>;
