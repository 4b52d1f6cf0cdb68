import { registerAs } from '@nestjs/config';
import { z } from 'zod';
import { intInRange, parseEnv } from './env.js';

/** The OpenTelemetry SDK's standard variables the gateway honours ('' = unset). */
export const TRACING_ENV_DEFAULTS = {
  OTEL_EXPORTER_OTLP_ENDPOINT: '',
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '',
  OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
  OTEL_SERVICE_NAME: 'api-gateway',
  OTEL_RESOURCE_ATTRIBUTES: '',
  OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
  OTEL_TRACES_SAMPLER_ARG: '0.1',
  OTEL_BSP_SCHEDULE_DELAY: '5000',
  OTEL_BSP_EXPORT_TIMEOUT: '30000',
  OTEL_BSP_MAX_QUEUE_SIZE: '2048',
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '512',
};

export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;

const httpUrl = z
  .string()
  .trim()
  .regex(/^https?:\/\/[^/\s]+/, 'an http:// or https:// URL');

const resourceAttributes = z
  .string()
  .trim()
  .regex(
    /^$|^[^=,\s]+=[^,]*(,[^=,\s]+=[^,]*)*$/,
    'key=value pairs separated by commas',
  );

export const tracingConfig = registerAs('tracing', () => {
  const env = parseEnv(
    {
      OTEL_EXPORTER_OTLP_ENDPOINT: z.union([z.literal(''), httpUrl]),
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.union([z.literal(''), httpUrl]),
      OTEL_EXPORTER_OTLP_PROTOCOL: z
        .string()
        .trim()
        .pipe(z.enum(['http/protobuf', 'http/json'])),
      OTEL_SERVICE_NAME: z.string().trim().min(1, 'a non-empty name'),
      OTEL_RESOURCE_ATTRIBUTES: resourceAttributes,
      OTEL_TRACES_SAMPLER: z
        .string()
        .trim()
        .toLowerCase()
        .pipe(z.enum(SAMPLERS)),
      OTEL_TRACES_SAMPLER_ARG: z
        .string()
        .trim()
        .regex(/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/, 'a number from 0 to 1')
        .transform(Number),
      OTEL_BSP_SCHEDULE_DELAY: intInRange(1, 600_000),
      OTEL_BSP_EXPORT_TIMEOUT: intInRange(1, 600_000),
      OTEL_BSP_MAX_QUEUE_SIZE: intInRange(1, 1_000_000),
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: intInRange(1, 1_000_000),
    },
    TRACING_ENV_DEFAULTS,
  );
  // The spec: a signal's own endpoint is used as is; the base one gets /v1/traces.
  const url =
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ||
    (env.OTEL_EXPORTER_OTLP_ENDPOINT &&
      `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`);
  return {
    /** Tracing is on when an OTLP endpoint is set; off, no OpenTelemetry code is loaded. */
    enabled: url !== '',
    url,
    protocol: env.OTEL_EXPORTER_OTLP_PROTOCOL,
    serviceName: env.OTEL_SERVICE_NAME,
    resourceAttributes: parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES),
    sampler: env.OTEL_TRACES_SAMPLER,
    samplerRatio: env.OTEL_TRACES_SAMPLER_ARG,
    batch: {
      scheduledDelayMillis: env.OTEL_BSP_SCHEDULE_DELAY,
      exportTimeoutMillis: env.OTEL_BSP_EXPORT_TIMEOUT,
      maxQueueSize: env.OTEL_BSP_MAX_QUEUE_SIZE,
      // The SDK wants a batch no larger than the queue.
      maxExportBatchSize: Math.min(
        env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
        env.OTEL_BSP_MAX_QUEUE_SIZE,
      ),
    },
  };
});

/** `k1=v1,k2=v2` with percent-encoded values (W3C Baggage octets), as the spec has it. */
function parseResourceAttributes(raw: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const pair of raw.split(',')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const value = pair.slice(eq + 1).trim();
    let decoded = value;
    try {
      decoded = decodeURIComponent(value);
    } catch {
      // Not percent-encoded after all: keep it verbatim.
    }
    attributes[pair.slice(0, eq).trim()] = decoded;
  }
  return attributes;
}
