#!/usr/bin/env node
// Per-request CPU of the tracing code itself, in-process (no HTTP, no noise from other processes):
// what TracingHook and the proxy call for one request with one backend attempt, sampled out and sampled,
// against the built tracer (dist/tracing/otel-tracer.js; `npm run build` first). The end-to-end figures
// (npm run bench:features, its trace-0 / trace-100 rows) carry the machine's noise; this is the floor under them.
// Usage: node bench/trace-cost.mjs [iterations, default 200000]
import path from 'node:path';
import { REPO } from './lib.mjs';

const iterations = Number(process.argv[2] ?? 200_000);
const { createOtelTracer } = await import(
  path.join(REPO, 'dist/tracing/otel-tracer.js')
);
const silent = () => undefined;
const logger = {
  error: silent,
  warn: silent,
  info: silent,
  debug: silent,
  verbose: silent,
};

function request(traceparent) {
  return {
    method: 'POST',
    url: '/predict',
    routeOptions: { url: '/predict' },
    headers: traceparent
      ? { host: 'gw', 'content-type': 'application/json', traceparent }
      : { host: 'gw', 'content-type': 'application/json' },
    protocol: 'http',
    hostname: 'gw',
    port: 8080,
    ip: '127.0.0.1',
    id: 'req-1',
    raw: { httpVersion: '1.1' },
  };
}

async function measure(label, sampler, samplerRatio, traceparent) {
  const tracer = await createOtelTracer(
    {
      enabled: true,
      // Nothing listens there: sampled spans are dropped by the exporter, which runs off this loop's clock.
      url: 'http://127.0.0.1:9/v1/traces',
      protocol: 'http/protobuf',
      serviceName: 'trace-cost',
      resourceAttributes: {},
      sampler,
      samplerRatio,
      batch: {
        scheduledDelayMillis: 60_000,
        exportTimeoutMillis: 1000,
        maxQueueSize: 2048,
        maxExportBatchSize: 512,
      },
    },
    { exported: silent, dropped: silent },
    logger,
    'bench',
  );
  const req = request(traceparent);
  const one = () => {
    const trace = tracer.startRequest(req);
    const headers = { ...req.headers };
    const attempt = trace.attempt(
      headers,
      'http://127.0.0.1:3000',
      '/predict',
      0,
      undefined,
    );
    attempt?.end(200, undefined);
    if (trace.recording) trace.end(200, 42);
  };
  for (let i = 0; i < 20_000; i++) one(); // warm-up (JIT)
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) one();
  const cpu = process.cpuUsage(cpu0);
  const us = (cpu.user + cpu.system) / iterations;
  // The header copy is the proxy's own work, not tracing's: measured alone and subtracted.
  const copy0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) void { ...req.headers };
  const copy = process.cpuUsage(copy0);
  const copyUs = (copy.user + copy.system) / iterations;
  console.log(
    `${label.padEnd(44)} ${(us - copyUs).toFixed(2).padStart(6)} µs per request`,
  );
  await tracer.shutdown().catch(() => undefined);
}

await measure(
  'sampled out (parentbased_traceidratio, 0)',
  'parentbased_traceidratio',
  0,
);
await measure(
  'sampled out, client sent traceparent (flag 00)',
  'parentbased_traceidratio',
  0.1,
  '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00',
);
await measure('sampled (always_on; export not included)', 'always_on', 1);
process.exit(0);
