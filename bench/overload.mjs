#!/usr/bin/env node
// Overload scenario: 4x the offered load a simulated model server can serve
// (bench/model-server.mjs: N slots x service time), through the built gateway
// with BACKEND_MAX_CONCURRENCY off, fixed (N, 2N) and auto. Prints a markdown
// table and writes bench/results/overload.md. bench/run.mjs runs it as the last
// step of the full benchmark (runOverload below).
// Usage: npm run build && node bench/overload.mjs [--slots 4] [--service-ms 20] [--seconds 5]
//   [--warmup-seconds 3] [--main dist/main.js] [--out bench/results/overload.md]
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  BENCH_DIR,
  REPO,
  installCleanup,
  spawnListening,
  startCapturedGateway,
  stop,
} from './lib.mjs';
import { gatewayShedP99, openLoop, summarize } from './open-loop.mjs';

async function modelStats(url, reset = false) {
  const res = await fetch(`${url}/stats`, { method: reset ? 'POST' : 'GET' });
  return res.json();
}

async function limitGauge(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('gateway_backend_concurrency_limit{'));
  return line ? Number(line.split(' ').at(-1)) : null;
}

/**
 * The gateway's settings in an overload run against `modelUrl`: no retries, the deadline, probes out of the way;
 * every 5xx is logged at error level, so the 503s' own time comes from the access log.
 */
export function overloadEnv(modelUrl, deadlineMs) {
  return {
    LOG_LEVEL: 'error',
    BACKEND_URL: modelUrl,
    BACKEND_TIMEOUT_MS: String(deadlineMs),
    RETRY_ATTEMPTS: '0',
    HEALTH_CHECK_INTERVAL_MS: '60000',
  };
}

/**
 * Runs the comparison: off, fixed N, fixed 2N and auto against an N-slot model server at 4x its capacity.
 * Resolves with { params, rows, table } (table: markdown, the first line describing the set-up).
 */
export async function runOverload({
  slots = 4,
  serviceMs = 20,
  seconds = 5,
  warmupSeconds = 3,
  main = path.join(REPO, 'dist/main.js'),
  node = process.execPath,
  log = (line) => console.error(line),
} = {}) {
  const measureMs = seconds * 1000;
  const warmupMs = warmupSeconds * 1000;
  const rps = 4 * ((slots * 1000) / serviceMs);
  const deadlineMs = 3 * serviceMs;

  async function scenario(model, limit) {
    const gw = await startCapturedGateway({
      node,
      main,
      env: {
        ...overloadEnv(model, deadlineMs),
        BACKEND_MAX_CONCURRENCY: limit,
      },
    });
    const { url } = gw;
    try {
      await openLoop({ url: `${url}/predict`, rps, durationMs: warmupMs });
      await modelStats(model, true);
      const limits = [];
      gw.capture();
      const poll = setInterval(
        () =>
          void limitGauge(url).then(
            (l) => l !== null && limits.push(l),
            () => undefined, // the gateway is being stopped
          ),
        250,
      );
      const results = await openLoop({
        url: `${url}/predict`,
        rps,
        durationMs: measureMs,
      });
      clearInterval(poll);
      const stats = await modelStats(model);
      const sorted = limits.sort((a, b) => a - b);
      // Lines still buffered (pino flushes every 200 ms) come out on stop.
      const logText = await gw.logs();
      return {
        limit,
        p99ShedGatewayMs: gatewayShedP99(logText),
        ...summarize(results, { durationMs: measureMs, deadlineMs }),
        backendServed: stats.served,
        backendWasted: stats.wasted,
        learned: sorted.length
          ? `${sorted[Math.floor(sorted.length / 2)]} (${sorted[0]}..${sorted.at(-1)})`
          : '-',
      };
    } finally {
      await stop(gw.child);
    }
  }

  const rows = [];
  for (const limit of ['0', String(slots), String(2 * slots), 'auto']) {
    // A fresh model server per setting: the backlog an unlimited run leaves
    // queued inside the server would otherwise eat the next setting's time.
    const model = await spawnListening('model-server.mjs', [
      '--slots',
      String(slots),
      '--service-ms',
      String(serviceMs),
    ]);
    try {
      const row = await scenario(`http://127.0.0.1:${model.port}`, limit);
      log(JSON.stringify(row));
      rows.push(row);
    } finally {
      await stop(model.child);
    }
  }

  const bestFixed = Math.max(
    ...rows
      .filter((r) => /^\d+$/.test(r.limit) && r.limit !== '0')
      .map((r) => r.goodputRps),
  );
  const lines = [
    `Overload: ${slots}-slot model server, ${serviceMs} ms per request (${(slots * 1000) / serviceMs} req/s), offered ${rps} req/s (4x) for ${seconds} s after ${warmupSeconds} s of warm-up; deadline BACKEND_TIMEOUT_MS=${deadlineMs}. Goodput: 200s within the deadline per second. p99 503: as the load generator saw it / the gateway's own time (access log duration_ms).`,
    '',
    '| BACKEND_MAX_CONCURRENCY | goodput req/s | vs best fixed | p50 served ms | p99 served ms | 503 overloaded | p99 503 ms (client / gateway) | 504 | backend answers wasted | learned limit (median, range) |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.limit === '0' ? '0 (off)' : r.limit} | ${r.goodputRps} | ${bestFixed > 0 ? Math.round((100 * r.goodputRps) / bestFixed) + ' %' : '-'} | ${r.p50ServedMs} | ${r.p99ServedMs} | ${r.shed} | ${r.p99ShedMs} / ${r.p99ShedGatewayMs} | ${r.timeouts} | ${r.backendWasted} | ${r.limit === 'auto' ? r.learned : '-'} |`,
    ),
  ];
  return {
    params: {
      slots,
      serviceMs,
      offeredRps: rps,
      seconds,
      warmupSeconds,
      deadlineMs,
    },
    rows,
    table: lines.join('\n'),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      slots: { type: 'string', default: '4' },
      'service-ms': { type: 'string', default: '20' },
      seconds: { type: 'string', default: '5' },
      'warmup-seconds': { type: 'string', default: '3' },
      main: { type: 'string' },
      out: { type: 'string' },
    },
  });
  installCleanup();
  const { table } = await runOverload({
    slots: Number(values.slots),
    serviceMs: Number(values['service-ms']),
    seconds: Number(values.seconds),
    warmupSeconds: Number(values['warmup-seconds']),
    ...(values.main ? { main: path.resolve(values.main) } : {}),
  });
  console.log(table);
  const out = values.out ?? path.join(BENCH_DIR, 'results/overload.md');
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${table}\n`);
}
